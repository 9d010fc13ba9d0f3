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

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .evaluation.report import jsonable
from .evaluation.splits import PROTOCOLS, make_split
from .features import FeatureConfig, input_columns
from .schema import ATTACK_COLUMN, BENIGN_CLASS, detect_schema

__all__ = [
    "run_benchmark",
    "add_benchmark_arguments",
    "benchmark_from_args",
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
def _resolve(models: Iterable[str] | str | None) -> list[str]:
    from .models.registry import SHORT_NAMES

    if models is None or models == "all":
        return list(SHORT_NAMES)
    names = [m.strip().lower() for m in (models.split(",") if isinstance(models, str) else models) if m.strip()]
    if names == ["all"]:
        return list(SHORT_NAMES)
    unknown = [m for m in names if m not in SHORT_NAMES]
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(SHORT_NAMES)}, or all")
    return names


def build_model(name: str, *, task: str = "multiclass", seed: int = 0, epochs: int | None = None,
                n_jobs: int | None = None, **params: Any):
    """A detector by short name with the benchmark's settings (only those it has)."""
    from .models.registry import short_names

    cls = short_names()[name]
    known = set(cls().get_params())
    settings: dict[str, Any] = {"random_state": seed, "verbose": False}
    if getattr(cls, "kind", "supervised") == "supervised":
        settings["task"] = task
    if epochs is not None:
        settings["max_epochs"] = int(epochs)
    if n_jobs is not None:
        settings["n_jobs"] = int(n_jobs)
    settings = {k: v for k, v in settings.items() if k in known}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**{**settings, **params})


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


def _memory_bytes(detector) -> int:
    """Bytes of the learned parameters held in memory (tree nodes, arrays, tensors)."""
    total = 0
    if hasattr(detector, "module_"):
        total += sum(t.numel() * t.element_size() for t in detector.module_.state_dict().values())
    est = getattr(detector, "estimator_", None)
    for sub in getattr(est, "estimators_", []) or []:
        tree = getattr(sub, "tree_", None)
        if tree is not None:
            state = tree.__getstate__()
            total += state["nodes"].nbytes + state["values"].nbytes
    for name, value in vars(detector).items():
        if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype != object:
            total += value.nbytes
    return int(total)


def model_size(detector) -> tuple[int, str]:
    """(bytes, where from): the saved model directory if the model can be saved, else memory."""
    if hasattr(detector, "module_") or hasattr(detector, "save_state"):
        from .persistence import save_model

        with tempfile.TemporaryDirectory() as tmp:
            save_model(detector, tmp)
            return int(sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())), "saved"
    return _memory_bytes(detector), "memory"


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
    data: str | Path | pd.DataFrame | None = None,
    protocols: Sequence[str] = ("paper", "dedup"),
    task: str = "multiclass",
    seed: int = 0,
    max_rows: int | None = None,
    out_dir: str | Path | None = DEFAULT_OUT_DIR,
    progress: bool = True,
    *,
    epochs: int | None = None,
    n_jobs: int | None = None,
    model_params: dict[str, dict[str, Any]] | None = None,
    repeats: int = 3,
    latency_calls: int = 200,
    synthetic_flows: int = 20_000,
) -> dict[str, Any]:
    """Train and evaluate ``models`` (short names, default all) on the same splits.

    Args:
        models: short names from :data:`~flowsentinel.models.registry.SHORT_NAMES`
            (``None`` or ``"all"``: every one).
        data: a flow file, a flow table, or ``None`` for the shared
            NF-BoT-IoT-v2 sample (synthetic flows where it is absent).
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
        repeats, latency_calls: see :func:`measure_speed`.
        synthetic_flows: flows to generate when no data is available.

    Returns:
        ``{"rows": [...], "data": ..., "splits": {...}, "settings": {...}, "files": {...}}``.
    """
    from .training.run import load_dataset

    names = _resolve(models)
    model_params = {k.lower(): dict(v) for k, v in (model_params or {}).items()}
    for key in model_params:
        _resolve([key])
    if task not in ("multiclass", "binary"):
        raise ConfigError(f"task must be 'multiclass' or 'binary', got {task!r}")
    bad = [p for p in protocols if p not in PROTOCOLS]
    if bad or not protocols:
        raise ConfigError(f"protocols must be among {', '.join(PROTOCOLS)}, got {list(protocols)}")

    if isinstance(data, pd.DataFrame):
        flows = data.reset_index(drop=True)
        if max_rows is not None:
            flows = flows.iloc[:max_rows].reset_index(drop=True)
        synthetic = bool(flows.get("Dataset", pd.Series(dtype=object)).astype(str).eq("SYNTHETIC").any())
        description = f"flow table ({len(flows):,} flows)" + (" [SYNTHETIC]" if synthetic else "")
    else:
        dataset = load_dataset(data, synthetic_flows=synthetic_flows, seed=seed, max_rows=max_rows)
        flows, synthetic, description = dataset.flows, dataset.synthetic, dataset.description
    if ATTACK_COLUMN not in flows.columns:
        raise DataError(f"the benchmark needs labelled flows: the table has no {ATTACK_COLUMN!r} column")
    y_attack = flows[ATTACK_COLUMN].to_numpy(dtype=object)
    from .models.base import (
        binary_labels,  # scikit-learn loads here, not when the CLI starts
    )

    y_task = binary_labels(y_attack) if task == "binary" else y_attack
    all_classes = [BENIGN_CLASS] + sorted(set(y_attack.tolist()) - {BENIGN_CLASS})
    feature_columns = input_columns(detect_schema(list(flows.columns)), FeatureConfig())

    rows: list[dict[str, Any]] = []
    splits: dict[str, dict] = {}
    from tqdm.auto import tqdm

    bar = tqdm(total=len(protocols) * len(names), desc="benchmark", unit="model", disable=not progress, leave=False)
    try:
        for protocol in protocols:
            split = make_split(flows, y_task, protocol, feature_columns, seed)
            train, val, test = (flows.iloc[i].reset_index(drop=True) for i in (split.train, split.val, split.test))
            values, counts = np.unique(y_task[split.train], return_counts=True)
            majority = str(values[np.argmax(counts)])
            splits[protocol] = {**split.info, "n_train": len(train), "n_val": len(val), "n_test": len(test)}
            y_test_attack = y_attack[split.test]
            for name in names:
                bar.set_description(f"{protocol}: {name}")
                if progress:
                    log.info("[%s] training %s on %d flows", protocol, name, len(train))
                rows.append(_benchmark_one(
                    name, protocol, train, val, test, y_test_attack, all_classes, majority,
                    task=task, seed=seed, epochs=epochs, n_jobs=n_jobs, params=model_params.get(name, {}),
                    repeats=repeats, latency_calls=latency_calls, progress=progress,
                ))
                bar.update(1)
    finally:
        bar.close()

    result: dict[str, Any] = {
        "title": f"flowsentinel benchmark ({task})",
        "data": description,
        "synthetic": synthetic,
        "task": task,
        "classes": all_classes,
        "splits": splits,
        "settings": {
            "models": names, "protocols": list(protocols), "seed": seed, "max_rows": max_rows, "epochs": epochs,
            "n_jobs": n_jobs, "model_params": model_params, "batch": BATCH, "repeats": repeats,
            "latency_calls": latency_calls,
        },
        "rows": rows,
    }
    if out_dir is not None:
        result["files"] = _write(Path(out_dir), result)
    return result


def _benchmark_one(name, protocol, train, val, test, y_test_attack, all_classes, majority, *, task, seed,
                   epochs, n_jobs, params, repeats, latency_calls, progress) -> dict[str, Any]:
    det = build_model(name, task=task, seed=seed, epochs=epochs, n_jobs=n_jobs, **params)
    kind = getattr(det, "kind", "supervised")
    t0 = time.perf_counter()
    det.fit(train, X_val=val)
    fit_s = time.perf_counter() - t0
    proba = det.predict_proba(test)
    scores = det.scores_from_proba(proba)
    pred = det.labels_from_proba(proba)
    binary = kind == "unsupervised" or task == "binary"
    from .evaluation.metrics import compute_metrics
    from .models.base import binary_labels

    truth = binary_labels(y_test_attack) if binary else y_test_attack
    metrics = compute_metrics(truth, pred, scores, majority_class=None if binary else majority)
    speed = measure_speed(det, test, repeats=repeats, latency_calls=latency_calls)
    size, size_from = model_size(det)
    row = {
        "protocol": protocol,
        "model": name,
        "estimator": type(det).__name__,
        "kind": kind,
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
        "n_test": int(len(test)),
        "metrics": metrics,
    }
    if progress:
        log.info(
            "[%s] %s: macro-F1 %.4f, false-alarm rate %s, %.1f s to train, %.0f flows/s",
            protocol, name, row["f1_macro"], _fmt(row["false_alarm_rate"]), fit_s, row["flows_per_s"],
        )
    return row


# ---- output --------------------------------------------------------------------
def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def markdown_table(result: dict[str, Any]) -> str:
    """The one benchmark table, as Markdown."""
    classes = result["classes"]
    head = (["protocol", "model", "scored as", "accuracy", "F1 macro", "F1 weighted"]
            + [f"recall {c}" for c in classes]
            + ["false-alarm rate", "ROC-AUC", "train s", "flows/s @4096", "latency p50 ms", "latency p99 ms",
               "size", "size from"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---|" + "---:|" * (len(head) - 3)]
    for r in result["rows"]:
        cells = [r["protocol"], r["model"], r["scored_as"], _fmt(r["accuracy"]), _fmt(r["f1_macro"]),
                 _fmt(r["f1_weighted"])]
        cells += [_fmt(r["recall"].get(c)) for c in classes]
        cells += [_fmt(r["false_alarm_rate"]), _fmt(r["roc_auc"]), f"{r['train_s']:.1f}", f"{r['flows_per_s']:,.0f}",
                  _fmt(r["latency_p50_ms"], 2), _fmt(r["latency_p99_ms"], 2), _size(r["size_bytes"]), r["size_from"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _markdown(result: dict[str, Any], png: str | None) -> str:
    s = result["settings"]
    lines = [f"# {result['title']}", ""]
    if result.get("synthetic"):
        lines += ["**SYNTHETIC DATA**: these flows were generated, not recorded; the scores say nothing about real traffic.", ""]
    lines.append(f"- Data: {result['data']}")
    for protocol, info in result["splits"].items():
        extra = f", {info['n_unique_vectors']:,} distinct vectors of {info['n_rows']:,}" if "n_unique_vectors" in info else ""
        lines.append(f"- `{protocol}` split: {info['n_train']:,} train, {info['n_val']:,} validation, {info['n_test']:,} test flows{extra}")
    lines.append(f"- Seed {s['seed']}; max rows {s['max_rows'] or 'all'}; deep-model epochs {s['epochs'] or 'model default'}; "
                 f"n_jobs {s['n_jobs'] if s['n_jobs'] is not None else 'model default'}")
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


# ---- command line ------------------------------------------------------------------
def add_benchmark_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``flowsentinel benchmark`` options."""
    from .models.registry import SHORT_NAMES

    parser.add_argument("--models", default="all",
                        help=f"comma-separated short names, or all (default): {', '.join(SHORT_NAMES)}")
    parser.add_argument("--data", help="flow file; default: the shared NF-BoT-IoT-v2 sample, else synthetic flows")
    parser.add_argument("--protocols", default="paper,dedup", help="comma-separated: paper, dedup (default both)")
    parser.add_argument("--task", choices=("multiclass", "binary"), default="multiclass",
                        help="for supervised models (unsupervised ones are always scored as binary)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, help="use only the first N valid flows")
    parser.add_argument("--epochs", type=int, help="maximum epochs of every deep model (default: each model's own)")
    parser.add_argument("--n-jobs", type=int, help="threads for tree ensembles, LightGBM, Isolation Forest")
    parser.add_argument("--latency-calls", type=int, default=200, help="single-flow calls for the latency percentiles")
    parser.add_argument("--synthetic-flows", type=int, default=20_000, help="flows to generate when no data is found")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help=f"where the table goes (default {DEFAULT_OUT_DIR})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-model log lines")
    return parser


def benchmark_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark from the arguments of :func:`add_benchmark_arguments`."""
    return run_benchmark(
        args.models,
        data=args.data,
        protocols=tuple(p.strip() for p in args.protocols.split(",") if p.strip()),
        task=args.task,
        seed=args.seed,
        max_rows=args.max_rows,
        out_dir=args.out_dir,
        progress=not args.no_progress,
        epochs=args.epochs,
        n_jobs=args.n_jobs,
        latency_calls=args.latency_calls,
        synthetic_flows=args.synthetic_flows,
    )


def summary_text(result: dict[str, Any]) -> str:
    """The title line, the table and the files written, for the command line."""
    return (("[SYNTHETIC DATA] " if result["synthetic"] else "") + f"{result['title']}: {result['data']}\n"
            + markdown_table(result) + f"written: {', '.join(result['files'].values())}")
