"""``flowsentinel benchmark``: every detector on the same splits, one table, one run.

For each protocol (``paper``, ``dedup``) the data is split once; every chosen
model is trained on that split's training part (validation part for early
stopping and thresholds) and scored on its test part. One table holds, per
protocol and model: accuracy, macro and weighted F1, recall per class,
false-alarm rate, ROC-AUC, training time, inference flows/s at batch 4096,
single-flow latency (p50 / p99) and model size. It is written as Markdown,
JSON and a PNG bar chart.

How things are measured:

* inference speed and latency call ``predict_proba`` on a flow table, so
  they include preprocessing (the feature pipeline) and the DataFrame
  round trip, not the model alone; flows/s is the median of ``repeats``
  calls on 4,096 test flows; latency is over ``latency_calls`` calls of one
  test flow each, after a warm-up;
* model size is the bytes of the saved model directory (manifest,
  preprocessing, weights or state) where the model can be saved, else the
  bytes of its parameters in memory; the ``size from`` column says which;
* unsupervised detectors (trained on benign flows only) are scored as
  binary, Benign against Attack: their per-class recall is the share of a
  class's flows on the right side of the threshold (flagged for an attack
  class, passed for Benign). The same holds for any model with ``task="binary"``.

Timings move with the machine's load: compare them within one run.

>>> from flowsentinel.synthetic import generate_flows
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as out:
...     result = run_benchmark(["pca", "lightgbm"], data=generate_flows(1500, random_state=0, balance=0.3),
...                            protocols=("paper",), out_dir=out, progress=False, latency_calls=5, n_jobs=1,
...                            model_params={"lightgbm": {"n_estimators": 10}})
>>> [(r["protocol"], r["model"]) for r in result["rows"]]
[('paper', 'pca'), ('paper', 'lightgbm')]
>>> sorted(result["files"])
['json', 'markdown', 'png']
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..evaluation.report import jsonable
from ..evaluation.tables import Column, fmt_value, render
from ..features import FeatureConfig
from ..schema import ATTACK_COLUMN, BENIGN_CLASS
from .experiment import Dataset, evaluate, load_dataset, prepare

__all__ = [
    "run_benchmark",
    "summary_text",
    "build_model",
    "measure_speed",
    "model_size",
    "markdown_table",
    "DEFAULT_OUT_DIR",
    "BATCH",
]

log = logging.getLogger(__name__)

DEFAULT_OUT_DIR = "reports/benchmark"
#: Flows per call for the throughput measurement.
BATCH = 4096


# ---- models ----------------------------------------------------------------
BENCHMARK_PROTOCOLS = ("paper", "dedup")


def _resolve(models: Iterable[str] | str | None) -> list[str]:
    from ..models.registry import SHORT_NAMES

    if models is None or models == "all":
        return list(SHORT_NAMES)
    names = [m.strip().lower() for m in (models.split(",") if isinstance(models, str) else models) if m.strip()]
    if names == ["all"]:
        return list(SHORT_NAMES)
    unknown = [m for m in names if m not in SHORT_NAMES]
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(SHORT_NAMES)}, or all")
    return names


def _known_params(name: str) -> set[str]:
    from ..models.presets import NETWORKS, network_param_names
    from ..models.registry import make_detector

    known = set(type(make_detector(name))._param_names())
    if name in NETWORKS:
        known |= set(network_param_names(name))
    return known


def build_model(name: str, *, task: str = "multiclass", seed: int = 0, epochs: int | None = None,
                n_jobs: int | None = None, policy: dict[str, Any] | None = None,
                features: FeatureConfig | None = None, **params: Any):
    """A detector by short name with the benchmark's settings (only those it has).

    ``policy`` (``threshold``/``target_far``) is the threshold policy every
    model of one benchmark shares.
    """
    from ..models.registry import make_detector

    known = _known_params(name)
    settings: dict[str, Any] = {"random_state": seed, "verbose": False, "task": task, "feature_config": features}
    if epochs is not None:
        settings["max_epochs"] = int(epochs)
    if n_jobs is not None:
        settings["n_jobs"] = int(n_jobs)
    settings.update({k: v for k, v in (policy or {}).items() if v is not None})
    settings = {k: v for k, v in settings.items() if k in known and v is not None}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    det = make_detector(name, **{**settings, **params})
    det.check_params()
    return det


# ---- measurements ------------------------------------------------------------
def measure_speed(detector, flows: pd.DataFrame, *, batch: int = BATCH, repeats: int = 3,
                  latency_calls: int = 200) -> dict[str, float]:
    """Flows/s at ``batch`` flows per call and single-flow latency percentiles (ms).

    Both call ``predict_proba`` on flow tables: preprocessing is included.
    A test table smaller than ``batch`` is repeated to fill the batch.
    """
    if len(flows) == 0:
        raise DataError("no test flows to time inference on")
    reps = int(np.ceil(batch / len(flows)))
    big = (pd.concat([flows] * reps, ignore_index=True) if reps > 1 else flows).iloc[:batch].reset_index(drop=True)
    detector.predict_proba(big)  # warm-up (allocations, lazy imports)
    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        detector.predict_proba(big)
        times.append(time.perf_counter() - t0)
    singles = [flows.iloc[[i % len(flows)]] for i in range(latency_calls + 5)]
    lat = []
    for i, one in enumerate(singles):
        t0 = time.perf_counter()
        detector.predict_proba(one)
        if i >= 5:  # the first calls warm caches
            lat.append(time.perf_counter() - t0)
    lat_ms = np.asarray(lat or [np.nan]) * 1e3
    return {
        "flows_per_s": float(batch / np.median(times)),
        "latency_p50_ms": float(np.percentile(lat_ms, 50)),
        "latency_p99_ms": float(np.percentile(lat_ms, 99)),
    }


def model_size(detector) -> tuple[int, str]:
    """(bytes, where from): the saved model directory, written to a temporary folder."""
    from ..persistence import save_model

    with tempfile.TemporaryDirectory() as tmp:
        save_model(detector, Path(tmp) / "model")
        return int(sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())), "saved"


def _recalls(y_attack: np.ndarray, pred: np.ndarray, metrics: dict, binary: bool, classes: list[str]) -> dict:
    out = {}
    for c in classes:
        mask = y_attack == c
        if not mask.any():
            out[c] = None
        elif not binary:
            out[c] = metrics["per_class"].get(c, {}).get("recall")
        else:
            flagged = pred[mask] != BENIGN_CLASS
            out[c] = float(1.0 - flagged.mean()) if c == BENIGN_CLASS else float(flagged.mean())
    return out


# ---- the run -----------------------------------------------------------------
def run_benchmark(
    models: Sequence[str] | str | None = None,
    data: str | Path | pd.DataFrame | Dataset | None = None,
    protocols: Sequence[str] = BENCHMARK_PROTOCOLS,
    task: str = "multiclass",
    seed: int = 0,
    max_rows: int | None = None,
    out_dir: str | Path | None = DEFAULT_OUT_DIR,
    progress: bool = True,
    *,
    epochs: int | None = None,
    n_jobs: int | None = None,
    model_params: dict[str, dict[str, Any]] | None = None,
    threshold: float | None = None,
    target_far: float | None = None,
    features: FeatureConfig | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    repeats: int = 3,
    latency_calls: int = 200,
    synthetic_flows: int = 20_000,
) -> dict[str, Any]:
    """Train and evaluate ``models`` (short names, default all) on the same splits, at the same threshold policy.

    Args:
        models: short names from :data:`~flowsentinel.models.registry.SHORT_NAMES`
            (``None`` or ``"all"``: every one).
        data: a flow file, a flow table, a :class:`~flowsentinel.training.experiment.Dataset`,
            or ``None`` for the shared NF-BoT-IoT-v2 sample (synthetic flows where it is absent).
        protocols: split protocols; each is split once for all models.
        task: ``multiclass`` or ``binary`` for the supervised models.
        seed: splits and model seeds.
        max_rows: use only the first N valid flows of a file.
        out_dir: where ``benchmark.md``, ``benchmark.json`` and
            ``benchmark.png`` go (``None``: write nothing).
        progress: a progress bar over the models and a log line per model.
        epochs: maximum epochs for every deep model (their default otherwise).
        n_jobs: threads for the tree ensembles, LightGBM and Isolation Forest.
        model_params: extra parameters per short name.
        threshold, target_far: the threshold policy of every model (the
            unsupervised ones keep their own 1% target when neither is given).
        features: preprocessing of every model.
        fractions: train/validation/test shares.
        repeats, latency_calls: see :func:`measure_speed`.
        synthetic_flows: flows to generate when no data is available.

    Returns:
        ``{"rows": [...], "data": ..., "splits": {...}, "settings": {...}, "files": {...}}``.
    """
    from ..choices import TASKS

    names = _resolve(models)
    model_params = {k.lower(): dict(v) for k, v in (model_params or {}).items()}
    for key in model_params:
        _resolve([key])
    if task not in TASKS:
        raise ConfigError(f"task must be 'multiclass' or 'binary', got {task!r}")
    bad = [p for p in protocols if p not in BENCHMARK_PROTOCOLS]
    if bad or not protocols:
        raise ConfigError(f"protocols must be among {', '.join(BENCHMARK_PROTOCOLS)}, got {list(protocols)}")
    if epochs is not None:
        # Checked here, not only by the deep models: a run of tree models alone took ``epochs=-1`` and
        # reported "deep-model epochs -1" (probe case 297), and 0 was shown as "model default".
        from ..models.params import positive_int

        epochs = positive_int("epochs", epochs)
    policy = {"threshold": threshold, "target_far": target_far}
    features = features or FeatureConfig()
    for name in names:  # every setting checked before any data is read
        build_model(name, task=task, seed=seed, epochs=epochs, n_jobs=n_jobs, policy=policy, features=features,
                    **model_params.get(name, {}))

    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, pd.DataFrame):
        flows = data.reset_index(drop=True)
        if max_rows is not None:
            flows = flows.iloc[:max_rows].reset_index(drop=True)
        synthetic = bool(flows.get("Dataset", pd.Series(dtype=object)).astype(str).eq("SYNTHETIC").any())
        dataset = Dataset(flows, f"flow table ({len(flows):,} flows)" + (" [SYNTHETIC]" if synthetic else ""),
                          synthetic, {"n_flows": len(flows)})
    else:
        dataset = load_dataset(data, synthetic_flows=synthetic_flows, seed=seed, max_rows=max_rows, progress=progress)
    if ATTACK_COLUMN not in dataset.flows.columns:
        raise DataError(f"the benchmark needs labelled flows: the table has no {ATTACK_COLUMN!r} column")
    y_attack = dataset.flows[ATTACK_COLUMN].to_numpy(dtype=object)
    all_classes = [BENIGN_CLASS] + sorted(set(y_attack.tolist()) - {BENIGN_CLASS})

    rows: list[dict[str, Any]] = []
    splits: dict[str, dict] = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(protocols) * len(names), desc="benchmark", unit="model", disable=not progress, leave=False)
    try:
        for protocol in protocols:
            prepared = prepare(dataset, task=task, protocol=protocol, seed=seed, fractions=fractions,
                               features=features)
            splits[protocol] = prepared.split_info
            for name in names:
                bar.set_description(f"{protocol}: {name}")
                if progress:
                    log.info("[%s] training %s on %d flows", protocol, name, len(prepared.train))
                det = build_model(name, task=task, seed=seed, epochs=epochs, n_jobs=n_jobs, policy=policy,
                                  features=features, **model_params.get(name, {}))
                rows.append(_benchmark_one(name, det, prepared, all_classes, repeats=repeats,
                                           latency_calls=latency_calls, progress=progress))
                bar.update(1)
    finally:
        bar.close()

    result: dict[str, Any] = {
        "title": f"flowsentinel benchmark ({task})",
        "data": dataset.description,
        "synthetic": dataset.synthetic,
        "task": task,
        "classes": all_classes,
        "splits": splits,
        "settings": {
            "models": names, "protocols": list(protocols), "seed": seed, "max_rows": max_rows, "epochs": epochs,
            "n_jobs": n_jobs, "model_params": model_params, "threshold_policy": policy, "batch": BATCH,
            "repeats": repeats, "latency_calls": latency_calls,
        },
        "rows": rows,
    }
    if out_dir is not None:
        result["files"] = _write(Path(out_dir), result)
    return result


def _benchmark_one(name, det, prepared, all_classes, *, repeats, latency_calls, progress) -> dict[str, Any]:
    t0 = time.perf_counter()
    det.fit(prepared.train, X_val=prepared.val)
    fit_s = time.perf_counter() - t0
    metrics, _ = evaluate(det, prepared.test, prepared.task, prepared.majority)
    binary = det.kind == "unsupervised" or prepared.task == "binary"
    pred = det.predict(prepared.test)
    speed = measure_speed(det, prepared.test, repeats=repeats, latency_calls=latency_calls)
    size, size_from = model_size(det)
    y_test_attack = prepared.test[ATTACK_COLUMN].to_numpy(dtype=object)
    row = {
        "protocol": prepared.protocol,
        "model": name,
        "estimator": type(det).__name__,
        "kind": det.kind,
        "scored_as": "binary" if binary else "multiclass",
        "accuracy": metrics["accuracy"],
        "f1_macro": metrics["f1_macro"],
        "f1_weighted": metrics["f1_weighted"],
        "recall": _recalls(y_test_attack, pred, metrics, binary, all_classes),
        "false_alarm_rate": metrics["false_alarm_rate"],
        "detection_rate": metrics["detection_rate"],
        "roc_auc": metrics["roc_auc"],
        "train_s": fit_s,
        **speed,
        "size_bytes": size,
        "size_from": size_from,
        "threshold": float(det.threshold_),
        "n_test": int(len(prepared.test)),
        "metrics": metrics,
    }
    if progress:
        log.info(
            "[%s] %s: macro-F1 %.4f, false-alarm rate %s, %.1f s to train, %.0f flows/s",
            prepared.protocol, name, row["f1_macro"], fmt_value(row["false_alarm_rate"], "{:.4f}"), fit_s,
            row["flows_per_s"],
        )
    return row


# ---- output --------------------------------------------------------------------
def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def markdown_table(result: dict[str, Any]) -> str:
    """The one benchmark table, as Markdown."""
    classes = result["classes"]
    columns = ([Column("protocol", "protocol"), Column("model", "model"), Column("scored_as", "scored as"),
                Column("accuracy", "accuracy", "{:.4f}"), Column("f1_macro", "F1 macro", "{:.4f}"),
                Column("f1_weighted", "F1 weighted", "{:.4f}")]
               + [Column(f"recall:{c}", f"recall {c}", "{:.4f}") for c in classes]
               + [Column("false_alarm_rate", "false-alarm rate", "{:.4f}"), Column("roc_auc", "ROC-AUC", "{:.4f}"),
                  Column("threshold", "threshold", "{:.4f}"), Column("train_s", "train s", "{:.1f}"),
                  Column("flows_per_s", "flows/s @4096", "{:,.0f}"),
                  Column("latency_p50_ms", "latency p50 ms", "{:.2f}"), Column("latency_p99_ms", "latency p99 ms", "{:.2f}"),
                  Column("size", "size", ""), Column("size_from", "size from")])
    rows = [{**r, **{f"recall:{c}": r["recall"].get(c) for c in classes}, "size": _size(r["size_bytes"])}
            for r in result["rows"]]
    return render(rows, columns) + "\n"


def _markdown(result: dict[str, Any], png: str | None) -> str:
    s = result["settings"]
    lines = [f"# {result['title']}", ""]
    if result.get("synthetic"):
        lines += ["**SYNTHETIC DATA**: these flows were generated, not recorded; the scores say nothing about real traffic.", ""]
    lines.append(f"- Data: {result['data']}")
    for protocol, info in result["splits"].items():
        extra = f", {info['n_unique_vectors']:,} distinct vectors of {info['n_rows']:,}" if "n_unique_vectors" in info else ""
        lines.append(f"- `{protocol}` split: {info['n_train']:,} train, {info['n_val']:,} validation, {info['n_test']:,} test flows{extra}")
    policy = s.get("threshold_policy") or {}
    lines.append(f"- Seed {s['seed']}; max rows {s['max_rows'] or 'all'}; deep-model epochs {s['epochs'] or 'model default'}; "
                 f"n_jobs {s['n_jobs'] if s['n_jobs'] is not None else 'model default'}")
    lines.append("- Threshold policy, the same for every model: " + (
        f"fixed threshold {policy['threshold']}" if policy.get("threshold") is not None else
        f"target false-alarm rate {policy['target_far']} on benign validation flows" if policy.get("target_far") is not None
        else "0.5 for the supervised models; the unsupervised ones a 1% target false-alarm rate"))
    lines += [
        f"- Inference: `predict_proba` on flow tables, preprocessing included; flows/s is the median of {s['repeats']} "
        f"calls of {s['batch']:,} test flows; latency is over {s['latency_calls']} calls of one flow.",
        "- Size: `saved` = bytes of the saved model directory; `memory` = bytes of the learned parameters in memory.",
        "- Scored as `binary` (unsupervised detectors, binary task): Benign against Attack; recall of a class is the "
        "share of its flows on the right side of the threshold.",
        "- Timings are from one run: compare them within this table only.",
        "",
        markdown_table(result),
    ]
    if png:
        lines += [f"![macro-F1 and false-alarm rate]({png})", ""]
    return "\n".join(lines)


def _plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = result["settings"]["protocols"]
    models = list(dict.fromkeys(r["model"] for r in result["rows"]))
    index = {(r["protocol"], r["model"]): r for r in result["rows"]}
    x = np.arange(len(models))
    width = 0.8 / max(len(protocols), 1)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.1 * len(models) + 4), 4.5))
    for ax, key, label in ((axes[0], "f1_macro", "macro-F1 (higher is better)"),
                           (axes[1], "false_alarm_rate", "false-alarm rate (lower is better)")):
        for j, protocol in enumerate(protocols):
            vals = [index.get((protocol, m), {}).get(key) for m in models]
            ax.bar(x + (j - (len(protocols) - 1) / 2) * width, [np.nan if v is None else v for v in vals], width,
                   label=protocol)
        ax.set_xticks(x, models, rotation=40, ha="right")
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(title="protocol", fontsize=8)
    title = result["title"] + (" [SYNTHETIC]" if result.get("synthetic") else "")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write(out: Path, result: dict[str, Any]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    png = _plot(result, out / "benchmark.png")
    files = {"markdown": str(out / "benchmark.md"), "json": str(out / "benchmark.json"), "png": str(png)}
    (out / "benchmark.md").write_text(_markdown(result, png.name))
    (out / "benchmark.json").write_text(json.dumps(jsonable({**result, "files": files}), indent=2))
    log.info("benchmark written to %s", out)
    return files


def summary_text(result: dict[str, Any]) -> str:
    """The title line, the table and the files written, for the command line."""
    return (("[SYNTHETIC DATA] " if result["synthetic"] else "") + f"{result['title']}: {result['data']}\n"
            + markdown_table(result) + f"written: {', '.join(result['files'].values())}")
