"""Scoring flow files with a saved model and writing per-flow verdicts.

Per-flow models stream the file chunk by chunk, so a file larger than memory
can be scored. Windowed models need each host's flows in order, so they read
the whole file first.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

import numpy as np
import pandas as pd

from .. import __version__
from ..io.alerts import AlertWriter
from ..io.readers import FlowReader, ReadConfig
from ..schema import ATTACK_COLUMN

__all__ = ["DetectSummary", "detect_frames", "detect_file"]

log = logging.getLogger(__name__)
LINE = "_line"


@dataclass
class DetectSummary:
    n_flows: int = 0
    n_alerts: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    n_rejected: int = 0
    rejects_path: str | None = None
    seconds: float = 0.0

    def text(self) -> str:
        rate = self.n_flows / self.seconds if self.seconds else 0.0
        classes = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.by_class.items(), key=lambda kv: -kv[1]))
        out = f"{self.n_flows:,} flows scored, {self.n_alerts:,} alerts ({classes or 'none'}) in {self.seconds:.1f} s ({rate:,.0f} flows/s)"
        if self.n_rejected:
            out += f"; {self.n_rejected:,} bad rows set aside in {self.rejects_path}"
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"n_flows": self.n_flows, "n_alerts": self.n_alerts, "alerts_by_class": self.by_class,
                "n_rejected": self.n_rejected, "rejects_path": self.rejects_path, "seconds": self.seconds}


def model_identity(detector) -> tuple[str, str]:
    """The model's short name, and a version: flowsentinel's and the model's creation time."""
    from ..models.registry import short_name

    manifest = getattr(detector, "manifest_", {}) or {}
    version = f"{manifest.get('versions', {}).get('flowsentinel', __version__)}/{manifest.get('created', 'unsaved')}"
    return short_name(detector), version


def detect_frames(detector, frames: Iterable[pd.DataFrame], writer: AlertWriter, *, where: str = "flows",
                  progress: bool = True, total: int | None = None, summary: DetectSummary | None = None
                  ) -> DetectSummary:
    """Score each frame and write its verdicts; frames may carry a ``_line`` column.

    ``summary``, when given, is filled in as frames are written, so that a
    caller interrupted part-way can say what was done.
    """
    from tqdm.auto import tqdm

    summary = DetectSummary() if summary is None else summary
    counts: Counter[str] = Counter()
    t0 = time.perf_counter()
    offset = 0
    with tqdm(total=total, desc="scoring", unit="flow", unit_scale=True, leave=False, disable=not progress or None) as bar:
        for frame in frames:
            if frame.empty:
                continue
            detector.check_columns(frame.columns, where)
            proba = detector.predict_proba(frame)
            scores = detector.scores_from_proba(proba)
            classes = detector.labels_from_proba(proba)
            alerts = scores >= detector.threshold_
            rows = frame[LINE].to_numpy() if LINE in frame.columns else np.arange(offset, offset + len(frame)) + 1
            truth = frame[ATTACK_COLUMN].to_numpy() if ATTACK_COLUMN in frame.columns else None
            writer.write(frame, scores, classes, alerts, rows, truth)
            counts.update(classes[alerts].tolist())
            summary.by_class = dict(counts)
            summary.n_flows += len(frame)
            summary.n_alerts += int(alerts.sum())
            summary.seconds = time.perf_counter() - t0
            offset += len(frame)
            bar.update(len(frame))
    writer.finish()
    summary.by_class = dict(counts)
    summary.seconds = time.perf_counter() - t0
    return summary


def detect_file(detector, path: str | Path, out: IO[str], fmt: str = "jsonl", *, only_alerts: bool = False,
                chunk_rows: int = 100_000, progress: bool = True, rejects_dir: Path | None = None,
                summary: DetectSummary | None = None, **writer_options) -> DetectSummary:
    """Score every valid flow of a flow file; bad rows go to a rejects file.

    ``writer_options`` go to :class:`~flowsentinel.io.alerts.AlertWriter` (sensor, suppression, explainer...).
    """
    reader = FlowReader(path, ReadConfig(require_labels=False, chunk_rows=chunk_rows, line_column=LINE,
                                         rejects_dir=rejects_dir))
    detector.check_columns(reader.columns, str(path))
    name, version = model_identity(detector)
    writer = AlertWriter(out, fmt, model_name=name, model_version=version, only_alerts=only_alerts,
                         threshold=detector.threshold_, **writer_options)
    frames: Iterable[pd.DataFrame] = reader
    if getattr(detector, "mode", "flow") == "window":
        frames = [pd.concat(list(reader), ignore_index=True)]
    summary = DetectSummary() if summary is None else summary
    try:
        detect_frames(detector, frames, writer, where=str(path), progress=progress, summary=summary)
    finally:
        summary.n_rejected = reader.report.n_rejected
        summary.rejects_path = reader.report.rejects_path
    return summary
