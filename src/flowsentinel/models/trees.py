"""Tree-ensemble detectors behind the same contract as the deep models.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(500, random_state=0)
>>> det = ExtraTreesDetector(n_estimators=10).fit(flows)
>>> det.predict(flows[:3]).shape
(3,)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from ..features import FeatureConfig
from .base import BaseDetector

__all__ = ["ExtraTreesDetector", "RandomForestDetector"]


class _SklearnForest(BaseDetector):
    def _make(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: Any = None, X_val: pd.DataFrame | None = None, y_val: Any = None):
        t0 = time.perf_counter()
        codes = self._set_classes(self._targets(X, y))
        matrix = self._fit_features(X)
        self.estimator_ = self._make().fit(matrix, codes)
        self.threshold_ = 0.5 if self.threshold is None else float(self.threshold)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        matrix = self._transform(X)
        proba = np.zeros((len(matrix), len(self.classes_)))
        proba[:, self.estimator_.classes_] = self.estimator_.predict_proba(matrix)
        return proba


class ExtraTreesDetector(_SklearnForest):
    """Extra Trees, the NF dataset authors' baseline (100 trees by default)."""

    def __init__(
        self,
        task: str = "multiclass",
        n_estimators: int = 100,
        max_depth: int | None = None,
        class_weight: str | None = None,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        n_jobs: int = -1,
    ):
        self.task = task
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.class_weight = class_weight
        self.threshold = threshold
        self.feature_config = feature_config
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _make(self):
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            class_weight=self.class_weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )


class RandomForestDetector(ExtraTreesDetector):
    """Random Forest with the same parameters as :class:`ExtraTreesDetector`."""

    def _make(self):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            class_weight=self.class_weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
