"""The model the service scores with: loaded, checked, warmed and swapped atomically.

Every call into the scoring internals (loading a model directory with its
engine, checking columns, scoring, EVE records) is in this
module, so that a change of those internals is made here only.

A :class:`ModelHolder` holds the current :class:`LoadedModel`. A swap loads
and checks the new model first, away from the requests being served, then
replaces the reference in one assignment: a request that took the old model
finishes on it, the next one gets the new one, and a model that fails its
checks never becomes current.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ModelLoadError
from ..schema import ADDRESS_COLUMNS

__all__ = ["Verdicts", "LoadedModel", "ModelHolder", "load_checked"]

log = logging.getLogger(__name__)

# Rows of the probe frame scored before a model is accepted: more than one,
# so that a batch axis that only works for one row is caught.
_PROBE_ROWS = 8


@dataclass(frozen=True)
class Verdicts:
    """One score, class and alert flag per flow, in the order of the frame."""

    scores: np.ndarray
    classes: np.ndarray
    alerts: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def slice(self, start: int, stop: int) -> "Verdicts":
        return Verdicts(self.scores[start:stop], self.classes[start:stop], self.alerts[start:stop])


class LoadedModel:
    """A model directory loaded for scoring.

    Attributes:
        model_dir: where it was loaded from.
        name, version: the estimator and ``flowsentinel-version/created``,
            as ``detect`` writes them into alerts.
        digest: SHA-256 (first 16 hex digits) of the manifest, which holds
            the weights' and training data's digests: two models with the
            same name and creation second still differ here.
        input_columns: the flow columns the model reads.
        engine: ``onnx`` or ``torch``.
        loaded_at: Unix time of the load.
    """

    def __init__(self, model_dir: Path, detector, scorer):
        self.model_dir = model_dir
        self.detector = detector
        self.scorer = scorer
        manifest = detector.manifest_
        from ..serving.detect import model_identity

        self.name, self.version = model_identity(scorer)
        self.digest = str(manifest.get("decision_sha256")
                          or hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest())[:16]
        self.input_columns: list[str] = list(manifest.get("input_columns", []))
        self.classes: list[str] = [str(c) for c in manifest.get("classes", [])]
        self.threshold = float(scorer.threshold_)
        self.mode = getattr(scorer, "mode", "flow")
        self.engine = getattr(getattr(scorer, "engine_", None), "name", "native")
        self.loaded_at = time.time()

    def identity(self) -> dict:
        return {"name": self.name, "version": self.version, "digest": self.digest}

    def info(self) -> dict:
        """What ``GET /v1/model`` answers: the identity, how it runs, and the manifest."""
        return {**self.identity(), "model_dir": str(self.model_dir), "engine": self.engine, "mode": self.mode,
                "threshold": self.threshold, "classes": self.classes, "input_columns": self.input_columns,
                "loaded_at": self.loaded_at, "manifest": self.detector.manifest_}

    def missing_columns(self, columns) -> list[str]:
        have = set(columns)
        return [c for c in self.input_columns if c not in have]

    def check_columns(self, columns, where: str) -> None:
        """Raise :class:`~flowsentinel.errors.MissingColumnsError` naming what the model lacks."""
        self.scorer.check_columns(columns, where)

    def score(self, frame: pd.DataFrame) -> Verdicts:
        proba = self.scorer.predict_proba(frame)
        scores = np.asarray(self.scorer.scores_from_proba(proba), dtype=np.float64)
        classes = np.asarray(self.scorer.labels_from_proba(proba))
        return Verdicts(scores, classes, scores >= self.scorer.threshold_)

    def eve(self, frame: pd.DataFrame, verdicts: Verdicts, rows: np.ndarray) -> str:
        """EVE records (JSON lines) of the frame's alerts; ``rows`` numbers its flows."""
        from ..io.alerts import AlertWriter

        out = io.StringIO()
        writer = AlertWriter(out, "jsonl", model_name=self.name, model_version=self.version, only_alerts=True,
                             threshold=self.threshold)
        writer.write(frame, verdicts.scores, verdicts.classes, verdicts.alerts, rows)
        writer.finish()
        return out.getvalue()

    def probe_frame(self, n: int = _PROBE_ROWS) -> pd.DataFrame:
        """A frame of ``n`` neutral flows with every input column."""
        data = {c: (["0.0.0.0"] * n if c in ADDRESS_COLUMNS else np.zeros(n, dtype=np.int64)) for c in self.input_columns}
        return pd.DataFrame(data)

    def warm_up(self) -> None:
        """Score a probe frame and check what comes back; raise ModelLoadError if it is not sound.

        This is also the first network call, which is the slow one (ONNX
        Runtime plans its memory then): after it the model is warm.
        """
        where = f"{self.model_dir}"
        if not self.input_columns or not self.classes:
            raise ModelLoadError(f"{where}: the manifest names no input columns or no classes")
        if not np.isfinite(self.threshold):
            raise ModelLoadError(f"{where}: the alert threshold {self.threshold} is not a finite number")
        probe = self.probe_frame()
        try:
            self.check_columns(probe.columns, where)
            proba = np.asarray(self.scorer.predict_proba(probe), dtype=np.float64)
            verdicts = self.score(probe)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"{where}: the model fails on a probe batch: {type(exc).__name__}: {exc}") from None
        if proba.shape != (len(probe), len(self.classes)):
            raise ModelLoadError(f"{where}: a probe batch of {len(probe)} flows gave probabilities of shape {proba.shape}, "
                                 f"expected ({len(probe)}, {len(self.classes)})")
        if not np.isfinite(proba).all() or np.abs(proba.sum(axis=1) - 1).max() > 1e-3:
            raise ModelLoadError(f"{where}: the model's probabilities on a probe batch are not finite or do not sum to 1")
        if not np.isfinite(verdicts.scores).all() or not set(map(str, verdicts.classes)) <= set(self.classes):
            raise ModelLoadError(f"{where}: the model's scores or classes on a probe batch are not sound")


def load_checked(model_dir: str | Path, *, engine: str = "auto", threads: int = 1, batch_flows: int = 4096) -> LoadedModel:
    """Load, wrap, check and warm a model directory; raise ModelLoadError when any step fails."""
    from ..models.engines import InferenceConfig
    from ..persistence import load_model

    path = Path(model_dir)
    t0 = time.perf_counter()
    try:
        detector = load_model(path, inference=InferenceConfig(engine=engine, intra_op_threads=threads,
                                                              batch_size=batch_flows))
        scorer = detector
    except ModelLoadError:
        raise
    except Exception as exc:
        # A damaged file can fail deep inside a reader (safetensors, ONNX):
        # whatever it raises, this model is refused and the current one stays.
        raise ModelLoadError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") from None
    model = LoadedModel(path, detector, scorer)
    model.warm_up()
    log.info("model %s %s (%s) loaded from %s in %.1f s, engine %s", model.name, model.version, model.digest, path,
             time.perf_counter() - t0, model.engine)
    return model


class ModelHolder:
    """The current model; :meth:`swap` replaces it with a checked one in one step."""

    def __init__(self, model: LoadedModel):
        self._current = model
        self._swap_lock = threading.Lock()

    @property
    def current(self) -> LoadedModel:
        return self._current

    def swap(self, load) -> tuple[LoadedModel, LoadedModel]:
        """Call ``load()`` for a new model and make it current; return ``(old, new)``.

        One swap at a time; while ``load()`` runs, requests keep being scored
        with the current model. If ``load()`` raises, nothing changes.
        """
        with self._swap_lock:
            new = load()
            old, self._current = self._current, new
        return old, new
