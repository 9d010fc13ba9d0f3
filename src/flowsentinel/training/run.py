"""Train, evaluate on the protocol's held-out split, report, save: one run.

This is what ``flowsentinel train`` calls; it holds the steps, the CLI only
parses arguments.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import ExperimentConfig, default_dataset
from ..errors import ConfigError, DataError
from ..evaluation.metrics import binary_curves, compute_metrics
from ..evaluation.report import write_report
from ..evaluation.splits import make_split
from ..features import input_columns
from ..io.readers import FlowReader, ReadConfig, ReadReport
from ..models.base import binary_labels
from ..persistence import file_sha256, save_model
from ..schema import ATTACK_COLUMN, DATASET_COLUMN, detect_schema
from ..synthetic import SYNTHETIC_TAG, generate_flows

__all__ = ["Dataset", "load_dataset", "build_detector", "build_reference", "train_and_evaluate", "evaluate_model"]

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    flows: pd.DataFrame
    description: str
    synthetic: bool
    info: dict[str, Any]
    read_report: ReadReport | None = None


def load_dataset(path: str | Path | None, *, synthetic_flows: int = 20_000, seed: int = 0,
                 max_rows: int | None = None, rejects_dir: Path | None = None,
                 require_labels: bool = True) -> Dataset:
    """A flow file, else the shared NF-BoT-IoT-v2 sample, else synthetic flows."""
    if path is None:
        path = default_dataset()
        if path is None:
            log.warning("no dataset given and the NF-BoT-IoT-v2 sample is not in the data folder: "
                        "using %d SYNTHETIC flows (set FLOWSENTINEL_DATA or pass --data)", synthetic_flows)
            flows = generate_flows(synthetic_flows, random_state=seed)
            return Dataset(flows, f"SYNTHETIC NF-v2 flows ({len(flows):,}, seed {seed})", True,
                           {"path": None, "synthetic": True, "n_flows": len(flows), "seed": seed})
    path = Path(path)
    reader = FlowReader(path, ReadConfig(require_labels=require_labels, rejects_dir=rejects_dir))
    parts, total = [], 0
    from tqdm.auto import tqdm

    with tqdm(desc=f"reading {path.name}", unit="flow", unit_scale=True, leave=False, disable=None) as bar:
        for chunk in reader:
            parts.append(chunk)
            total += len(chunk)
            bar.update(len(chunk))
            if max_rows is not None and total >= max_rows:
                break
    flows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if max_rows is not None:
        flows = flows.iloc[:max_rows].reset_index(drop=True)
    log.info("%s", reader.report.summary())
    if flows.empty:
        raise DataError(f"{path}: no valid flows to use ({reader.report.n_rejected:,} rejected)")
    synthetic = DATASET_COLUMN in flows.columns and bool((flows[DATASET_COLUMN] == SYNTHETIC_TAG).any())
    info = {
        "path": str(path),
        "sha256": file_sha256(path),
        "schema": reader.schema.name,
        "n_flows": int(len(flows)),
        "n_rejected": reader.report.n_rejected,
        "synthetic": synthetic,
    }
    desc = f"{path.name} ({reader.schema.name}, {len(flows):,} flows)" + (" [SYNTHETIC]" if synthetic else "")
    return Dataset(flows, desc, synthetic, info, reader.report)


def build_detector(cfg: ExperimentConfig):
    """The detector a config asks for (the CNN-BiLSTM, in the chosen backend)."""
    params = {"task": cfg.run.task, "random_state": cfg.run.seed, "feature_config": cfg.features, **cfg.model}
    if cfg.run.backend == "mindspore":
        from ..backends.mindspore import MindSporeCNNBiLSTMDetector

        return MindSporeCNNBiLSTMDetector(**params)
    if cfg.run.backend != "torch":
        raise ConfigError(f"backend must be 'torch' or 'mindspore', got {cfg.run.backend!r}")
    from ..models.deep import CNNBiLSTMDetector

    return CNNBiLSTMDetector(**params)


def build_reference(name: str, cfg: ExperimentConfig):
    if name == "extratrees":
        from ..models.trees import ExtraTreesDetector

        return ExtraTreesDetector(task=cfg.run.task, random_state=cfg.run.seed, feature_config=cfg.features)
    raise ConfigError(f"unknown reference model {name!r}; known: extratrees")


def _labels(flows: pd.DataFrame, task: str) -> np.ndarray:
    y = flows[ATTACK_COLUMN].to_numpy(dtype=object)
    return binary_labels(y) if task == "binary" else y


def _display_name(detector) -> str:
    """The short name a detector goes by in tables (``cnn-bilstm``, ``extratrees``...)."""
    from ..models.registry import SHORT_NAMES

    name = getattr(detector, "canonical_estimator", type(detector).__name__)
    for short, (_, cls) in SHORT_NAMES.items():
        if cls == name:
            return short
    return name


def evaluate_model(detector, flows: pd.DataFrame, task: str, majority_class: str | None = None):
    """Metrics and curve points of a fitted detector on labelled flows."""
    t0 = time.perf_counter()
    proba = detector.predict_proba(flows)
    seconds = time.perf_counter() - t0
    scores = detector.scores_from_proba(proba)
    pred = detector.labels_from_proba(proba)
    y = _labels(flows, task)
    metrics = compute_metrics(y, pred, scores, majority_class=majority_class)
    metrics["scoring_flows_per_s"] = len(flows) / max(seconds, 1e-9)
    return metrics, binary_curves(y, scores)


def train_and_evaluate(cfg: ExperimentConfig, model_dir: str | Path | None, report_dir: str | Path | None) -> dict:
    """Train the configured detector, evaluate it and its references, save it."""
    report_dir = Path(report_dir) if report_dir else (Path(model_dir) / "report" if model_dir else None)
    data = load_dataset(cfg.run.data, synthetic_flows=cfg.run.synthetic_flows, seed=cfg.run.seed,
                        max_rows=cfg.run.max_rows, rejects_dir=report_dir)
    flows = data.flows
    y = _labels(flows, cfg.run.task)
    schema = detect_schema(list(flows.columns))
    split = make_split(flows, y, cfg.run.protocol, input_columns(schema, cfg.features), cfg.run.seed, cfg.run.fractions)
    train, val, test = (flows.iloc[i].reset_index(drop=True) for i in (split.train, split.val, split.test))
    log.info("%s split: %d train, %d validation, %d test flows %s", split.protocol, len(train), len(val), len(test), split.info)
    values, counts = np.unique(y[split.train], return_counts=True)
    majority = str(values[np.argmax(counts)])

    detector = build_detector(cfg)
    log.info("training %s (%s, %s) on %s", type(detector).__name__, cfg.run.task, getattr(detector, "mode", "flow"), data.description)
    detector.fit(train, X_val=val)
    metrics, curve = evaluate_model(detector, test, cfg.run.task, majority)
    metrics["fit_seconds"] = getattr(detector, "fit_seconds_", None)
    curves = {_display_name(detector): curve}
    references: dict[str, dict] = {}
    for name in cfg.run.references:
        ref = build_reference(name, cfg)
        log.info("training reference %s on the same split", name)
        ref.fit(train, X_val=val)
        ref_metrics, ref_curve = evaluate_model(ref, test, cfg.run.task, majority)
        ref_metrics["fit_seconds"] = getattr(ref, "fit_seconds_", None)
        references[name] = ref_metrics
        curves[name] = ref_curve

    result = {
        "title": f"{_display_name(detector)}, {cfg.run.task}, {cfg.run.protocol} protocol",
        "model_name": _display_name(detector),
        "data": data.description,
        "synthetic": data.synthetic,
        "protocol": cfg.run.protocol,
        "task": cfg.run.task,
        "model": f"{type(detector).__name__} ({getattr(detector, 'mode', 'flow')} mode)",
        "split_info": {**split.info, "n_train": len(train), "n_val": len(val), "n_test": len(test)},
        "metrics": metrics,
        "references": references,
        "history": getattr(detector, "history_", []),
        "config": cfg.to_dict(),
    }
    if report_dir:
        result["files"] = {k: str(v) for k, v in write_report(report_dir, result, curves).items()}
    if model_dir:
        save_model(
            detector,
            model_dir,
            metrics={"protocol": cfg.run.protocol, "test": metrics, "references": references,
                     "split": result["split_info"]},
            training_data={**data.info, "protocol": cfg.run.protocol, "majority_class": majority},
            extra={"config": cfg.to_dict(), "synthetic": data.synthetic},
        )
        try:
            from ..serving.fast import write_onnx

            write_onnx(model_dir, detector)
        except ImportError as exc:
            log.info("no model.onnx written (%s); detect exports the network when it loads the model", exc)
        result["model_dir"] = str(model_dir)
    return result
