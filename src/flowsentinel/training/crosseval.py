"""Cross-dataset evaluation: train on one set of sources, test on another (``flowsentinel crosseval``).

A detector that only ever meets the network it learned from says little
about the one it will guard. Each *scenario* trains every model on its
``train`` sources and tests it on its ``test`` sources, and on the held-out
part (by group: whole captures and devices) of its own sources. Scores are
binary (attack against benign: datasets name their attacks differently),
per test source: detection rate and false-alarm rate at the model's
threshold, ROC-AUC and PR-AUC. Every model of a scenario trains on the same
split at the same threshold policy (the config's), in one run.

Scenarios are TOML tables (``configs/scenarios/crosseval.toml``)::

    [[scenario]]
    name = "BoT-IoT -> CIC-IDS2018"
    train = ["data:nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"]
    test = ["data:nf-cse-cic-ids2018-v2/NF-CSE-CIC-IDS2018-v2-sample.csv.gz"]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..evaluation.metrics import compute_metrics
from ..evaluation.report import jsonable
from ..evaluation.tables import Column, render
from ..models.base import binary_labels
from ..schema import ATTACK_COLUMN, BENIGN_CLASS
from .experiment import Dataset, load_dataset, prepare

__all__ = ["Scenario", "load_scenarios", "run_crosseval", "markdown_table", "HELD_OUT"]

log = logging.getLogger(__name__)

#: The name of the test set made of the held-out part of a scenario's own sources.
HELD_OUT = "held out"


@dataclass(frozen=True)
class Scenario:
    """One cross-dataset run: train on ``train``, test on ``test`` and on the held-out part of ``train``."""

    name: str
    train: tuple[Any, ...]
    test: tuple[Any, ...] = ()
    held_out: bool = True
    base: str | None = None


def load_scenarios(path: str | Path) -> list[Scenario]:
    """The ``[[scenario]]`` tables of a TOML file (relative source paths: from the file's folder)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: scenario file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    tables = data.get("scenario")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path}: no [[scenario]] tables")
    out = []
    for i, t in enumerate(tables, 1):
        unknown = sorted(set(t) - ({f.name for f in dataclasses.fields(Scenario)} - {"base"}))
        if unknown:
            raise ConfigError(f"{path}: scenario {i}: unknown key(s) {', '.join(unknown)}")
        if not t.get("name") or not t.get("train"):
            raise ConfigError(f"{path}: scenario {i} needs a name and train sources")
        test = t.get("test", [])
        out.append(Scenario(str(t["name"]), tuple(t["train"]), tuple(test if isinstance(test, list) else [test]),
                            bool(t.get("held_out", True)), str(path.parent)))
    return out


def _binary_row(detector, flows: pd.DataFrame) -> dict[str, Any]:
    proba = detector.predict_proba(flows)
    scores = detector.scores_from_proba(proba)
    pred = np.where(scores >= detector.threshold_, "Attack", BENIGN_CLASS).astype(object)
    truth = binary_labels(flows[ATTACK_COLUMN].to_numpy(dtype=object))
    m = compute_metrics(truth, pred, scores)
    return {"n_benign": m["n_benign"], "n_attack": m["n_attack"], "detection_rate": m["detection_rate"],
            "false_alarm_rate": m["false_alarm_rate"], "roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"]}


def _test_sets(scenario: Scenario, prepared, cache) -> dict[str, pd.DataFrame]:
    sets: dict[str, pd.DataFrame] = {}
    if scenario.held_out:
        for source, part in prepared.test.groupby("Source", sort=False):
            sets[f"{HELD_OUT}: {source}"] = part.reset_index(drop=True)
    if scenario.test:
        test = cache(scenario.test, scenario.base)
        for source, part in test.flows.groupby("Source", sort=False):
            sets[str(source)] = part.reset_index(drop=True)
    return sets


def run_crosseval(scenarios: Sequence[Scenario], cfg, models: Sequence[str] = ("cnn-bilstm", "extratrees"),
                  out_dir: str | Path | None = None, *, epochs: int | None = None) -> dict[str, Any]:
    """Train every model of ``models`` per scenario, test on the scenario's test sets; one table.

    ``cfg`` (an :class:`~flowsentinel.config.ExperimentConfig`) gives the
    task, seed, fractions, features and the ``[model]`` settings of the
    network it names (the other models get the same features and threshold
    policy).
    """
    from ..config import build_detector, build_reference

    loaded: dict[tuple, Dataset] = {}

    def cache(specs, base) -> Dataset:
        key = (tuple(map(str, specs)), base)
        if key not in loaded:
            loaded[key] = load_dataset(list(specs), base=base, seed=cfg.run.seed)
        return loaded[key]

    main_name = cfg.model.get("network", "cnn-bilstm")
    rows: list[dict[str, Any]] = []
    for scenario in scenarios:
        data = cache(scenario.train, scenario.base)
        prepared = prepare(data, task=cfg.run.task, protocol="group", seed=cfg.run.seed, fractions=cfg.run.fractions,
                           features=cfg.features, balance=cfg.run.balance)
        sets = _test_sets(scenario, prepared, cache)
        for name in models:
            det = build_detector(cfg) if name == main_name else build_reference(name, cfg)
            if epochs is not None and "max_epochs" in det.get_params():
                det.set_params(max_epochs=int(epochs))
            det.check_params()
            t0 = time.perf_counter()
            det.fit(prepared.train, X_val=prepared.val)
            fit_s = time.perf_counter() - t0
            for test_name, flows in sets.items():
                missing = [c for c in det.required_columns if c not in flows.columns]
                if missing:
                    log.warning("%s: %s lacks %s; not scored", scenario.name, test_name, ", ".join(missing))
                    continue
                row = {"scenario": scenario.name, "model": name, "test": test_name, "fit_s": fit_s,
                       "threshold": float(det.threshold_), **_binary_row(det, flows)}
                rows.append(row)
                log.info("%s | %s | %s: detection %s, false alarms %s", scenario.name, name, test_name,
                         row["detection_rate"], row["false_alarm_rate"])
    result = {"title": "flowsentinel cross-dataset evaluation", "task": cfg.run.task, "models": list(models),
              "scenarios": [dataclasses.asdict(s) for s in scenarios], "config": cfg.to_dict(), "rows": rows}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "crosseval.json").write_text(json.dumps(jsonable(result), indent=2))
        (out / "crosseval.md").write_text(f"# {result['title']}\n\n" + markdown_table(result) + "\n")
        result["files"] = {"json": str(out / "crosseval.json"), "markdown": str(out / "crosseval.md")}
    return result


def markdown_table(result: dict[str, Any]) -> str:
    """One row per scenario, test set and model: detection and false alarms at the model's threshold."""
    cols = [Column("scenario", "scenario"), Column("test", "test flows"), Column("model", "model"),
            Column("n_attack", "attack flows", "{:,}"), Column("n_benign", "benign flows", "{:,}"),
            Column("detection_rate", "detection", "{:.4f}"), Column("false_alarm_rate", "false alarms", "{:.4f}"),
            Column("roc_auc", "ROC-AUC", "{:.4f}")]
    return render(result["rows"], cols)
