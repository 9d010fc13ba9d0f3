"""Scoring collected flows: the one place where the collector calls the detection path.

:class:`Scorer` loads a saved model with its engine and writes verdicts with
the same calls ``flowsentinel detect`` makes (``load_model``,
``detect_frames``, ``AlertWriter``), so
that a collected flow is scored exactly as a flow read from a file.
"""

from __future__ import annotations

import logging
from typing import IO

import pandas as pd

from ..errors import ConfigError, MissingColumnsError

__all__ = ["Scorer", "EXPORTER_CONFIG_HINT"]

log = logging.getLogger(__name__)

EXPORTER_CONFIG_HINT = ("train a model on this exporter's columns "
                        "(e.g. flowsentinel train --config configs/exporter.toml)")


class Scorer:
    """A saved model and the sink its verdicts go to.

    ``engine`` and ``threads`` are those of ``detect`` (``auto``: ONNX
    Runtime where installed); ``only_alerts`` writes alerts only.
    """

    def __init__(self, model_dir: str, out: IO[str], *, fmt: str = "jsonl", only_alerts: bool = False,
                 engine: str = "auto", threads: int = 1, host_context=None):
        """``host_context``: a :class:`~flowsentinel.serving.context.HostContextConfig` (default: its
        defaults; ``enabled=False`` turns it off); its counts run on from one batch to the next."""
        from ..io.alerts import AlertWriter
        from ..models.engines import InferenceConfig
        from ..persistence import load_model
        from ..serving.context import HostContext, HostContextConfig
        from ..serving.detect import model_identity

        detector = load_model(model_dir, inference=InferenceConfig(engine=engine, intra_op_threads=threads))
        if getattr(detector, "mode", "flow") != "flow":
            raise ConfigError(f"{model_dir}: a windowed model needs each host's flows in order; "
                              "collect scores flows as they arrive: use a per-flow model (model.mode = 'flow')")
        self.detector = detector
        config = HostContextConfig() if host_context is None else host_context
        self.hosts = HostContext(config) if config.enabled else None
        name, version = model_identity(self.detector)
        self.out = out
        self.writer = AlertWriter(out, fmt, model_name=name, model_version=version, only_alerts=only_alerts,
                                  threshold=detector.threshold_)

    @property
    def required_columns(self) -> list[str]:
        """The flow columns the model reads."""
        return list(self.detector.features_.input_columns_)

    def check_columns(self, columns, where: str) -> None:
        """Raise :class:`MissingColumnsError` naming the columns the model needs that ``columns`` lacks."""
        try:
            self.detector.check_columns(columns, where)
        except MissingColumnsError as exc:
            raise MissingColumnsError(f"{exc}; {EXPORTER_CONFIG_HINT}") from None

    def __call__(self, frames: list[pd.DataFrame]) -> tuple[int, int]:
        """Score and write ``frames``; returns (flows scored, alerts)."""
        from ..serving.detect import detect_frames

        summary = detect_frames(self.detector, frames, self.writer, where="collector", progress=False,
                                host_context=self.hosts)
        self.out.flush()
        return summary.n_flows, summary.n_alerts
