"""The one detector contract that every flowsentinel model follows.

A detector is a scikit-learn style estimator over *flow tables* (pandas
DataFrames in an NF schema), so that its preprocessing travels with it:

* ``fit(X, y=None)`` returns ``self``; ``y`` defaults to ``X["Attack"]``;
* ``decision_function(X)`` gives one score per flow, higher = more
  anomalous (for classifiers: 1 - P(benign));
* ``predict_proba(X)`` gives class probabilities in the order of ``classes_``;
* ``predict(X)`` applies the fitted ``threshold_`` to the score: below it a
  flow is ``"Benign"``, at or above it the most likely attack class;
* ``n_features_in_`` and ``feature_names_in_`` name the flow columns the
  model needs, checked at scoring time with a message listing what is absent.

``__init__`` only stores parameters; learned state ends in ``_``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ..errors import ConfigError, DataError, NotFittedError
from ..features import FeatureConfig, FeaturePipeline, MissingColumnsError
from ..schema import ATTACK_COLUMN, BENIGN_CLASS

__all__ = ["BaseDetector", "NotFittedError", "ATTACK_BINARY_CLASS", "binary_labels"]

ATTACK_BINARY_CLASS = "Attack"


def binary_labels(y: np.ndarray) -> np.ndarray:
    """Map attack-class names to ``Benign`` / ``Attack``."""
    y = np.asarray(y, dtype=object)
    return np.where(y == BENIGN_CLASS, BENIGN_CLASS, ATTACK_BINARY_CLASS).astype(object)


class BaseDetector(BaseEstimator, ABC):
    """Common plumbing: labels, preprocessing, thresholds, input checks.

    Subclasses implement :meth:`_fit_matrix` and :meth:`_proba_matrix` (or
    override :meth:`predict_proba` entirely).
    """

    #: "supervised" detectors learn classes; "unsupervised" ones learn benign traffic only.
    kind = "supervised"

    task: str = "multiclass"
    feature_config: FeatureConfig | None = None
    threshold: float | None = None

    # ---- labels ----------------------------------------------------------
    def _targets(self, X: pd.DataFrame, y: Any) -> np.ndarray:
        if y is None:
            if ATTACK_COLUMN not in X.columns:
                raise DataError(f"no labels: pass y or a flow table with an '{ATTACK_COLUMN}' column")
            y = X[ATTACK_COLUMN].to_numpy()
        y = np.asarray(y, dtype=object)
        if self.task == "binary":
            y = binary_labels(y)
        elif self.task != "multiclass":
            raise ConfigError(f"task must be 'multiclass' or 'binary', got {self.task!r}")
        return y

    def _set_classes(self, y: np.ndarray) -> np.ndarray:
        classes = sorted(set(y.tolist()))
        # Benign first, so column 0 of predict_proba is always P(benign) when present.
        if BENIGN_CLASS in classes:
            classes.remove(BENIGN_CLASS)
            classes.insert(0, BENIGN_CLASS)
        self.classes_ = np.asarray(classes, dtype=object)
        index = {c: i for i, c in enumerate(classes)}
        return np.asarray([index[v] for v in y], dtype=np.int64)

    # ---- preprocessing ---------------------------------------------------
    def _fit_features(self, X: pd.DataFrame) -> np.ndarray:
        self.features_ = FeaturePipeline(self.feature_config or FeatureConfig()).fit(X)
        self.n_features_in_ = self.features_.n_features_in_
        self.feature_names_in_ = self.features_.feature_names_in_
        return self.features_.transform(X)

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

    # ---- the contract ----------------------------------------------------
    @abstractmethod
    def fit(self, X: pd.DataFrame, y: Any = None) -> "BaseDetector":
        """Learn from flows ``X`` (labels ``y`` or ``X['Attack']``); returns self."""

    @abstractmethod
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score per flow: 1 - P(benign); higher means more anomalous."""
        return self.scores_from_proba(self.predict_proba(X))

    def scores_from_proba(self, proba: np.ndarray) -> np.ndarray:
        if self.classes_[0] == BENIGN_CLASS:
            return 1.0 - proba[:, 0]
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

    def _check_alert_settings(self) -> None:
        """Reject a ``threshold`` or ``target_far`` that is not a number in range, before any work."""
        for name, low, high in (("threshold", 0.0, 1.0), ("target_far", 0.0, 1.0)):
            value = getattr(self, name, None)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
                raise ConfigError(f"{name} must be a number from {low:g} to {high:g} (or unset), got {value!r}")

    def _threshold_from_far(self, scores: np.ndarray, benign: np.ndarray) -> float:
        """The alert threshold: ``threshold`` if set, else one meeting ``target_far``
        on the given (validation) benign flows, else 0.5.

        With a target false-alarm rate, the threshold sits just above the
        benign score that only ``target_far`` of benign validation flows
        exceed, so that share at most is flagged.
        """
        if self.threshold is not None:
            return float(self.threshold)
        target = getattr(self, "target_far", None)
        benign_scores = np.sort(np.asarray(scores)[np.asarray(benign)])[::-1]
        if target is None or len(benign_scores) == 0:
            return 0.5
        allowed = int(np.floor(target * len(benign_scores)))
        if allowed >= len(benign_scores):
            return 0.0
        return float(np.nextafter(benign_scores[allowed], np.inf))

    def is_alert(self, X: pd.DataFrame) -> np.ndarray:
        """True where the anomaly score reaches ``threshold_``."""
        return self.decision_function(X) >= self.threshold_


# Re-exported for callers that catch input problems.
MissingColumnsError = MissingColumnsError
