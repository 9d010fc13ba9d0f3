"""Gradient-boosted trees (LightGBM) behind the detector contract.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(600, random_state=0)
>>> lgbm = LightGBMDetector(n_estimators=20, n_jobs=1).fit(flows)
>>> bool((lgbm.decision_function(flows) >= 0).all())
True
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..features import FeatureConfig
from .base import BaseDetector, DetectorState
from .params import number_in, positive_int

__all__ = ["LightGBMDetector"]


class LightGBMDetector(BaseDetector):
    """Gradient-boosted trees (LightGBM's scikit-learn API) behind the detector contract.

    Scoring goes through the fitted booster, which is also what is saved (as
    LightGBM's own text model, stored as bytes in the state arrays, never
    pickled), so a loaded model scores exactly as the fitted one.

    Args:
        n_estimators, learning_rate, num_leaves, max_depth, min_child_samples,
        subsample, colsample_bytree: as in ``lightgbm.LGBMClassifier``.
        class_weight: ``None`` or ``"balanced"``.
        threshold, target_far, val_fraction: the threshold policy.
        n_jobs: LightGBM threads (``-1``: all cores).
    """

    def __init__(
        self,
        task: str = "multiclass",
        n_estimators: int = 200,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        max_depth: int = -1,
        min_child_samples: int = 20,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        class_weight: str | None = None,
        threshold: float | None = None,
        target_far: float | None = None,
        val_fraction: float = 0.15,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        n_jobs: int = -1,
    ):
        self.task = task
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.class_weight = class_weight
        self.threshold = threshold
        self.target_far = target_far
        self.val_fraction = val_fraction
        self.feature_config = feature_config
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        positive_int("n_estimators", self.n_estimators)
        number_in("learning_rate", self.learning_rate, 0.0, 10.0, low_open=True)
        positive_int("num_leaves", self.num_leaves, 2)
        number_in("subsample", self.subsample, 0.0, 1.0, low_open=True)
        number_in("colsample_bytree", self.colsample_bytree, 0.0, 1.0, low_open=True)
        if self.class_weight not in (None, "balanced"):
            raise ConfigError(f"class_weight must be None or 'balanced'; got {self.class_weight!r}")

    def _fit(self, X, y, X_val, y_val) -> None:
        import lightgbm

        codes = self._set_classes(y)
        matrix = self._fit_features(X)
        model = lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            max_depth=self.max_depth,
            min_child_samples=self.min_child_samples,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            class_weight=self.class_weight,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        model.fit(matrix, codes)
        self.booster_ = model.booster_

    def _proba_matrix(self, matrix: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.booster_.predict(matrix, num_threads=max(int(self.n_jobs), 0)), dtype="float64")
        if raw.ndim == 1:  # binary objective: P(class 1)
            raw = np.column_stack([1.0 - raw, raw])
        return raw

    # ---- state (no pickle) -------------------------------------------------
    def _get_state(self) -> DetectorState:
        text = self.booster_.model_to_string().encode()
        return DetectorState({"booster": np.frombuffer(text, dtype=np.uint8).copy()}, {"format": "lightgbm-text"})

    def _set_state(self, state: DetectorState) -> None:
        import lightgbm

        self.booster_ = lightgbm.Booster(model_str=bytes(state.arrays["booster"]).decode())
