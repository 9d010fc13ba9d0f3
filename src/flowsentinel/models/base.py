"""The one detector contract that every flowsentinel model follows.

A detector is an estimator over *flow tables* (pandas DataFrames in an NF
schema), so that its preprocessing travels with it:

* ``fit(X, y=None, *, X_val=None, y_val=None)`` returns ``self``; ``y``
  defaults to ``X["Attack"]``. It runs the family's fit hook
  (:meth:`BaseDetector._fit`), then the one
  :class:`~flowsentinel.models.thresholds.ThresholdPolicy` of every family:
  a fixed ``threshold``, or one meeting ``target_far`` on the benign
  validation flows (``X_val``, or a stratified hold-out of ``val_fraction``
  of the training rows when the family or the policy needs one);
* ``decision_function(X)`` gives one score per flow, higher = more
  anomalous (for classifiers: 1 - P(benign));
* ``predict_proba(X)`` gives class probabilities in the order of ``classes_``;
* ``predict(X)`` applies the fitted ``threshold_`` to the score: below it a
  flow is ``"Benign"``, at or above it the most likely attack class;
* ``n_features_in_`` and ``feature_names_in_`` name the flow columns the
  model needs, checked at scoring time with a message listing what is absent;
* :meth:`BaseDetector.get_state` and :meth:`BaseDetector.from_state` carry
  the fitted state out and in as arrays and plain data: persistence writes
  and reads files, it never reaches into a detector.

``__init__`` only stores parameters; learned state ends in ``_``;
``get_params``/``set_params`` follow scikit-learn's protocol (so
``sklearn.base.clone`` works) without importing scikit-learn, which a
scoring process does not need.
"""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..choices import TASKS
from ..errors import ConfigError, DataError, MissingColumnsError, NotFittedError
from ..features import FeatureConfig, FeaturePipeline
from ..sampling import stratified_split
from ..schema import ATTACK_COLUMN, BENIGN_CLASS
from .params import number_in
from .thresholds import ThresholdPolicy

__all__ = ["BaseDetector", "DetectorState", "NotFittedError", "MissingColumnsError", "ATTACK_BINARY_CLASS",
           "binary_labels"]

log = logging.getLogger(__name__)

ATTACK_BINARY_CLASS = "Attack"


def binary_labels(y: np.ndarray) -> np.ndarray:
    """Map attack-class names to ``Benign`` / ``Attack``."""
    y = np.asarray(y, dtype=object)
    return np.where(y == BENIGN_CLASS, BENIGN_CLASS, ATTACK_BINARY_CLASS).astype(object)


@dataclass
class DetectorState:
    """A fitted detector's state as data: what persistence writes, and reads back.

    Attributes:
        arrays: numeric state (network weights, tree node tables, ...), written
            to one safetensors file.
        fields: plain JSON-able state (architecture, raw thresholds, training
            history, ...), written into the manifest.
    """

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)


class BaseDetector:
    """Common plumbing: parameters, labels, preprocessing, the threshold policy, input checks.

    A family implements :meth:`_fit` (learn from prepared rows), and
    :meth:`predict_proba` or :meth:`_proba_matrix`; persistable families
    also implement :meth:`_get_state` and :meth:`_set_state`.
    """

    #: "supervised" detectors learn classes; "unsupervised" ones learn benign traffic only.
    kind: ClassVar[str] = "supervised"
    #: The family always needs validation flows in fit (early stopping, raw thresholds).
    needs_validation: ClassVar[bool] = False
    #: Parameters that configure one run, not the model (callbacks...): left out of saved models.
    transient_params: ClassVar[tuple[str, ...]] = ()

    task: str = "multiclass"
    feature_config: FeatureConfig | None = None
    threshold: float | None = None
    target_far: float | None = None
    val_fraction: float = 0.15
    random_state: int = 0

    # ---- parameters (scikit-learn's protocol) --------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` arguments, as stored."""
        return {name: getattr(self, name) for name in self._param_names()}

    def saved_params(self) -> dict[str, Any]:
        """The parameters a saved model records: all but :attr:`transient_params`."""
        return {k: v for k, v in self.get_params().items() if k not in self.transient_params}

    def set_params(self, **params: Any) -> "BaseDetector":
        known = set(self._param_names())
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown parameter(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) is not v and defaults.get(k) != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    def check_params(self) -> None:
        """Reject bad parameter values (:class:`~flowsentinel.errors.ConfigError`) before any work."""
        if self.kind == "supervised" and self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        self.threshold_policy()
        number_in("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        if self.feature_config is not None and not isinstance(self.feature_config, FeatureConfig):
            raise ConfigError(f"feature_config must be a FeatureConfig; got {type(self.feature_config).__name__}")
        self._check_params()

    def _check_params(self) -> None:
        """Family-specific checks (see :mod:`flowsentinel.models.params`)."""

    def threshold_policy(self) -> ThresholdPolicy:
        return ThresholdPolicy(self.threshold, self.target_far)

    # ---- labels ----------------------------------------------------------
    def _targets(self, X: pd.DataFrame, y: Any) -> np.ndarray | None:
        """The task's labels: ``y``, else ``X['Attack']``; ``None`` for an unlabelled table
        (allowed for unsupervised detectors only)."""
        if y is None:
            if ATTACK_COLUMN not in X.columns:
                if self.kind == "supervised":
                    raise DataError(f"no labels: pass y or a flow table with an '{ATTACK_COLUMN}' column")
                return None
            y = X[ATTACK_COLUMN].to_numpy()
        y = np.asarray(y, dtype=object)
        return binary_labels(y) if self.task == "binary" else y

    def _set_classes(self, y: np.ndarray) -> np.ndarray:
        classes = sorted(set(y.tolist()))
        # Benign first, so column 0 of predict_proba is always P(benign) when present.
        if BENIGN_CLASS in classes:
            classes.remove(BENIGN_CLASS)
            classes.insert(0, BENIGN_CLASS)
        self.classes_ = np.asarray(classes, dtype=object)
        index = {c: i for i, c in enumerate(classes)}
        return np.asarray([index[v] for v in y], dtype=np.int64)

    def _codes(self, y: np.ndarray, where: str = "validation") -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes_)}
        unknown = sorted(set(y.tolist()) - set(index))
        if unknown:
            raise DataError(f"{where} labels not seen in training: {', '.join(map(str, unknown))}")
        return np.asarray([index[v] for v in y], dtype=np.int64)

    # ---- preprocessing ---------------------------------------------------
    def _fit_features(self, X: pd.DataFrame) -> np.ndarray:
        self.features_ = FeaturePipeline(self.feature_config or FeatureConfig()).fit(X)
        self._set_feature_names()
        return self.features_.transform(X)

    def _set_feature_names(self) -> None:
        self.n_features_in_ = self.features_.n_features_in_
        self.feature_names_in_ = self.features_.feature_names_in_

    def _check_fitted(self) -> None:
        if not hasattr(self, "features_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load a saved model")

    def _transform(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        if not isinstance(X, pd.DataFrame):
            raise TypeError("detectors score flow tables: pass a pandas DataFrame with NF schema columns")
        return self.features_.transform(X)

    def check_columns(self, columns, where: str = "flow table") -> None:
        """Raise :class:`MissingColumnsError` naming what the model lacks."""
        self._check_fitted()
        self.features_.check_columns(columns, where)

    @property
    def required_columns(self) -> list[str]:
        """The flow columns this fitted detector reads."""
        self._check_fitted()
        return list(self.features_.input_columns_)

    # ---- fitting ------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None, *, X_val: pd.DataFrame | None = None, y_val: Any = None):
        """Learn from flows ``X`` (labels ``y`` or ``X['Attack']``), then set the threshold; returns self."""
        t0 = time.perf_counter()
        self.check_params()
        policy = self.threshold_policy()
        y = self._targets(X, y)
        if X_val is not None:
            y_val = self._targets(X_val, y_val)
        elif self.needs_validation or policy.needs_validation:
            X, y, X_val, y_val = self._hold_out(X, y)
        if y is not None and self.kind == "supervised" and len(set(y.tolist())) < 2:
            raise DataError(f"training flows hold one class only ({y[0] if len(y) else 'none'}): "
                            "a detector needs benign and attack flows to learn from")
        self._fit(X, y, X_val, y_val)
        self.threshold_ = self._fit_threshold(policy, X_val, y_val)
        if policy.needs_validation:
            log.info("%s: alert threshold %.6f meets a false-alarm rate of %s on validation benign flows",
                     type(self).__name__, self.threshold_, policy.target_far)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _hold_out(self, X: pd.DataFrame, y: np.ndarray | None):
        """A stratified share ``val_fraction`` of the training rows, for validation."""
        labels = y if y is not None else np.zeros(len(X), dtype=object)
        part = stratified_split(labels, (1 - self.val_fraction, self.val_fraction, 0.0), seed=self.random_state)
        val_idx = np.sort(np.concatenate([part.val, part.test]))
        if len(part.train) < 2 or len(val_idx) < 1:
            raise DataError(f"{len(X)} training flows are too few to hold out {self.val_fraction:.0%} for validation")
        X_val = X.iloc[val_idx].reset_index(drop=True)
        X_fit = X.iloc[part.train].reset_index(drop=True)
        return X_fit, None if y is None else y[part.train], X_val, None if y is None else y[val_idx]

    def _fit(self, X: pd.DataFrame, y: np.ndarray | None, X_val: pd.DataFrame | None,
             y_val: np.ndarray | None) -> None:  # pragma: no cover - abstract
        """Learn: set ``features_``, ``classes_`` and the family's own state."""
        raise NotImplementedError

    def _fit_threshold(self, policy: ThresholdPolicy, X_val: pd.DataFrame | None, y_val: np.ndarray | None) -> float:
        if not policy.needs_validation:
            return policy.fit(np.zeros(0))
        if X_val is None or y_val is None:
            raise DataError("a target false-alarm rate needs labelled validation flows")
        benign = np.asarray(y_val) == BENIGN_CLASS
        if not benign.any():
            log.warning("%s: no benign validation flows to set the threshold on; using %s",
                        type(self).__name__, policy.fit(np.zeros(0)))
        return policy.fit(self.decision_function(X_val.iloc[np.flatnonzero(benign)]))

    # ---- the contract ----------------------------------------------------
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return self._proba_matrix(self._transform(X))

    def _proba_matrix(self, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score per flow: 1 - P(benign); higher means more anomalous."""
        return self.scores_from_proba(self.predict_proba(X))

    def scores_from_proba(self, proba: np.ndarray) -> np.ndarray:
        # float64: a float32 score compared with the threshold would round the threshold to
        # float32 too, and flag the benign flow the threshold was set just above.
        if self.classes_[0] == BENIGN_CLASS:
            return 1.0 - np.asarray(proba[:, 0], dtype=np.float64)
        return np.ones(len(proba))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class names: ``Benign`` below ``threshold_``, else the likeliest attack."""
        return self.labels_from_proba(self.predict_proba(X))

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        scores = self.scores_from_proba(proba)
        if self.classes_[0] != BENIGN_CLASS:
            return self.classes_[np.argmax(proba, axis=1)]
        attack = 1 + np.argmax(proba[:, 1:], axis=1) if proba.shape[1] > 1 else np.zeros(len(proba), int)
        labels = self.classes_[attack].astype(object)
        labels[scores < self.threshold_] = BENIGN_CLASS
        return labels

    def is_alert(self, X: pd.DataFrame) -> np.ndarray:
        """True where the anomaly score reaches ``threshold_``."""
        return self.decision_function(X) >= self.threshold_

    # ---- state in and out ------------------------------------------------------
    def get_state(self) -> DetectorState:
        """The fitted state as data (see :class:`DetectorState`); preprocessing, classes and
        threshold are taken by persistence from ``features_``, ``classes_`` and ``threshold_``."""
        self._check_fitted()
        return self._get_state()

    def _get_state(self) -> DetectorState:
        raise NotImplementedError(f"{type(self).__name__} has no save format")

    @classmethod
    def from_state(cls, params: dict[str, Any], features: FeaturePipeline, classes: list[str], threshold: float,
                   state: DetectorState) -> "BaseDetector":
        """A fitted detector rebuilt from :meth:`get_state`'s output and its parameters."""
        det = cls(**params)
        det.features_ = features
        det._set_feature_names()
        det.classes_ = np.asarray(classes, dtype=object)
        det.threshold_ = float(threshold)
        det._set_state(state)
        return det

    def _set_state(self, state: DetectorState) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no save format")
