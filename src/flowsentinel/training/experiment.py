"""The one experiment path: load labelled flows, split them by a protocol, evaluate fitted detectors.

``train``, ``evaluate``, ``benchmark``, ``tune`` and the cross-dataset runs
all go through these functions, so that every number they print was
obtained the same way:

* :func:`load_dataset`: a flow file, else the shared NF-BoT-IoT-v2 sample,
  else clearly labelled synthetic flows (with a warning that cannot be
  missed);
* :func:`prepare`: the protocol's train/validation/test parts, the majority
  class of the training part, and the split's description;
* :func:`evaluate`: every metric of :func:`~flowsentinel.evaluation.metrics.compute_metrics`
  and the ROC/PR curve points of a fitted detector on labelled flows;
* :func:`fit_and_evaluate`: fit on the training part (validation part for
  early stopping and thresholds) and evaluate on the test part.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..evaluation.metrics import binary_curves, compute_metrics
from ..evaluation.splits import make_split
from ..features import FeatureConfig, input_columns
from ..io.readers import ReadReport
from ..models.base import binary_labels
from ..models.registry import short_name
from ..paths import DATA_ENV, data_dir
from ..schema import ATTACK_COLUMN, detect_schema
from ..synthetic import generate_flows

__all__ = ["Dataset", "Prepared", "load_dataset", "task_labels", "prepare", "prepared_from_manifest", "evaluate",
           "fit_and_evaluate", "DEFAULT_SAMPLE"]

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"


@dataclass
class Dataset:
    """Labelled flows and where they came from."""

    flows: pd.DataFrame
    description: str
    synthetic: bool
    info: dict[str, Any]
    read_report: ReadReport | None = None
    #: Per flow, the unit that must lie wholly on one side of a split (``None``: each row its own).
    groups: np.ndarray | None = None
    #: What each source gave (:class:`~flowsentinel.sources.LabelledFlows`), when loaded from sources.
    sources: Any = None

    def counts_table(self) -> str | None:
        """Flows per source and class (Markdown), when loaded from sources."""
        return None if self.sources is None else self.sources.counts_table()


@dataclass
class Prepared:
    """A protocol's split of a dataset, ready to fit and evaluate on."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    task: str
    protocol: str
    majority: str
    split_info: dict[str, Any]
    data: Dataset
    extra: dict[str, Any] = field(default_factory=dict)


def load_dataset(data: Any = None, *, synthetic_flows: int = 20_000, seed: int = 0,
                 max_rows: int | None = None, rejects_dir: Path | None = None, base: str | Path | None = None,
                 require_labels: bool = True, progress: bool = True) -> Dataset:
    """Labelled flows from source specs (:mod:`flowsentinel.sources`), else the shared
    NF-BoT-IoT-v2 sample, else clearly labelled synthetic flows.

    ``data`` is one spec or a list of them (a flow file path, a labels file,
    ``FOLDER=LABEL`` ...). ``max_rows`` caps every flow-file source that does
    not set its own. ``require_labels`` is kept for callers of the single-file
    reader; every source here is labelled.
    """
    from ..sources import SourcesConfig, load_sources, parse_sources

    specs = [] if data is None else [data] if isinstance(data, (str, Path, dict)) else list(data)
    if not specs:
        sample = data_dir() / DEFAULT_SAMPLE
        if not sample.exists():
            log.warning(
                "\n%s\n  NO REAL DATA: the NF-BoT-IoT-v2 sample is not at %s.\n  Using %d SYNTHETIC flows: every "
                "number below says nothing about real traffic.\n  Set %s to the shared data folder or pass --data.\n%s",
                "!" * 78, sample, synthetic_flows, DATA_ENV, "!" * 78)
            flows = generate_flows(synthetic_flows, random_state=seed)
            return Dataset(flows, f"SYNTHETIC NF-v2 flows ({len(flows):,}, seed {seed})", True,
                           {"path": None, "synthetic": True, "n_flows": len(flows), "seed": seed})
        specs = [str(sample)]
    parsed = parse_sources([str(s) if isinstance(s, Path) else s for s in specs], base=base)
    if max_rows is not None:
        parsed = [dataclasses.replace(s, max_rows=max_rows) if s.kind == "flows" and s.max_rows is None else s
                  for s in parsed]
    labelled = load_sources(parsed, SourcesConfig(rejects_dir=rejects_dir))
    flows = labelled.flows
    synthetic = labelled.synthetic
    from ..persistence import file_sha256

    files = {str(spec.path): file_sha256(spec.path) for spec in parsed if spec.kind != "captures" and spec.path.is_file()}
    info = {
        **labelled.info(),
        "files_sha256": files,
        "n_rejected": int(sum(r.rejected for r in labelled.reports)),
        "synthetic": synthetic,
    }
    if len(parsed) == 1 and parsed[0].kind == "flows":  # one flow file: the fields the manifest has always had
        info.update(path=str(parsed[0].path), sha256=files.get(str(parsed[0].path)))
    names = ", ".join(f"{r.name} ({r.flows:,})" for r in labelled.reports)
    desc = f"{names}; {len(flows):,} flows" + (" [SYNTHETIC]" if synthetic else "")
    return Dataset(flows, desc, synthetic, info, groups=labelled.groups, sources=labelled)


def task_labels(flows: pd.DataFrame, task: str) -> np.ndarray:
    """The labels of the task: attack classes, or Benign/Attack."""
    if ATTACK_COLUMN not in flows.columns:
        raise DataError(f"labelled flows are needed: the table has no {ATTACK_COLUMN!r} column")
    y = flows[ATTACK_COLUMN].to_numpy(dtype=object)
    return binary_labels(y) if task == "binary" else y


def balance_rows(frame: pd.DataFrame, low: int, high: int, seed: int = 0) -> pd.DataFrame:
    """Each (source, class) of ``frame`` drawn down to ``high`` rows, or repeated up to ``low``.

    >>> f = pd.DataFrame({"Source": ["a"] * 5 + ["b"], "Attack": ["DoS"] * 5 + ["Benign"], "x": range(6)})
    >>> balance_rows(f, 3, 4).groupby(["Source", "Attack"]).size().to_dict()
    {('a', 'DoS'): 4, ('b', 'Benign'): 3}
    """
    rng = np.random.default_rng(seed)
    keys = [c for c in ("Source", ATTACK_COLUMN) if c in frame.columns]
    parts = []
    for _, part in frame.groupby(keys, sort=False):
        if len(part) > high:
            part = part.iloc[np.sort(rng.choice(len(part), high, replace=False))]
        elif len(part) < low:
            part = part.iloc[np.sort(rng.integers(0, len(part), low))]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def prepare(data: Dataset, *, task: str, protocol: str, seed: int = 0, fractions=(0.7, 0.15, 0.15),
            features: FeatureConfig = FeatureConfig(), balance: tuple[int, int] | None = None) -> Prepared:
    """Split ``data`` by ``protocol``; the majority class is the training part's.

    ``balance`` (``(low, high)``, see :func:`balance_rows`) resamples the
    training part only; validation and test parts keep every row.
    """
    flows = data.flows
    y = task_labels(flows, task)
    schema = detect_schema(list(flows.columns))
    kwargs = {"groups": data.groups} if protocol == "group" else {}
    split = make_split(flows, y, protocol, input_columns(schema, features), seed, fractions, **kwargs)
    train, val, test = (flows.iloc[i].reset_index(drop=True) for i in (split.train, split.val, split.test))
    log.info("%s split: %d train, %d validation, %d test flows %s", split.protocol, len(train), len(val), len(test),
             split.info)
    if len(test) == 0 or len(train) == 0:
        raise DataError(f"{data.description}: the {protocol} split leaves {len(train)} training and {len(test)} "
                        "test flows: too few flows; give more flows")
    values, counts = np.unique(y[split.train], return_counts=True)
    info = {**split.info, "n_train": len(train), "n_val": len(val), "n_test": len(test)}
    if balance is not None:
        train = balance_rows(train, int(balance[0]), int(balance[1]), seed)
        info.update(balance=list(balance), n_train_balanced=len(train))
    return Prepared(train, val, test, task, split.protocol, str(values[np.argmax(counts)]), info, data)


def prepared_from_manifest(manifest: dict, data: Any = None) -> Prepared:
    """The split a saved model was trained and tested on, made again from its manifest's config:
    the same sources (or ``data``), protocol, seed, fractions and balance."""
    from ..config import RunConfig

    run = (manifest.get("config") or {}).get("run") or {}
    defaults = RunConfig()
    sources = data if data is not None else run.get("data") or None
    dataset = load_dataset(sources, base=None if data is not None else run.get("data_base"), seed=run.get("seed", 0),
                           synthetic_flows=run.get("synthetic_flows", defaults.synthetic_flows))
    balance = run.get("balance")
    return prepare(dataset, task=manifest.get("task") or run.get("task", defaults.task),
                   protocol=run.get("protocol", defaults.protocol), seed=run.get("seed", 0),
                   fractions=tuple(run.get("fractions", defaults.fractions)),
                   balance=tuple(balance) if balance else None)


def evaluate(detector, flows: pd.DataFrame, task: str, majority_class: str | None = None) -> tuple[dict, dict | None]:
    """Metrics and curve points of a fitted detector on labelled flows.

    Unsupervised detectors, and any detector with the binary task, are
    scored as Benign against Attack.
    """
    t0 = time.perf_counter()
    proba = detector.predict_proba(flows)
    seconds = time.perf_counter() - t0
    scores = detector.scores_from_proba(proba)
    pred = detector.labels_from_proba(proba)
    binary = task == "binary" or getattr(detector, "kind", "supervised") == "unsupervised"
    y = task_labels(flows, "binary" if binary else task)
    metrics = compute_metrics(y, pred, scores, majority_class=None if binary and task != "binary" else majority_class)
    metrics["scoring_flows_per_s"] = len(flows) / max(seconds, 1e-9)
    metrics["threshold"] = float(detector.threshold_)
    return metrics, binary_curves(y, scores)


def fit_and_evaluate(detector, prepared: Prepared) -> dict[str, Any]:
    """Fit on the training part (validation part for early stopping and thresholds), evaluate on the test part."""
    name = short_name(detector)
    log.info("training %s (%s) on %d flows of %s", name, prepared.task, len(prepared.train), prepared.data.description)
    detector.fit(prepared.train, X_val=prepared.val)
    metrics, curve = evaluate(detector, prepared.test, prepared.task, prepared.majority)
    metrics["fit_seconds"] = getattr(detector, "fit_seconds_", None)
    return {"name": name, "detector": detector, "metrics": metrics, "curve": curve}
