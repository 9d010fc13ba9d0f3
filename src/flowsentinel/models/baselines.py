"""Supervised baselines behind the detector contract: LightGBM and six deep networks.

The deep baselines are thin :class:`~flowsentinel.models.deep.DeepClassifier`
subclasses (parameters, :meth:`module_kwargs`, :meth:`build_module`): they
train with the same loop, the same class weights, the same early stopping
and the same windowing as the CNN-BiLSTM. Their networks are in
:mod:`flowsentinel.models.baseline_networks`.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(600, random_state=0)
>>> det = DNNDetector(max_epochs=1, verbose=False).fit(flows)
>>> det.predict_proba(flows[:4]).shape == (4, len(det.classes_))
True
>>> lgbm = LightGBMDetector(n_estimators=20, n_jobs=1).fit(flows)
>>> bool((lgbm.decision_function(flows) >= 0).all())
True
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..errors import DataError
from ..features import FeatureConfig
from . import baseline_networks as nets
from .base import BaseDetector
from .deep import DeepClassifier

__all__ = [
    "DNNDetector",
    "CNNDetector",
    "LSTMDetector",
    "CNNLSTMDetector",
    "CNNGRUDetector",
    "TCNDetector",
    "LightGBMDetector",
    "DEEP_BASELINES",
]

#: Parameters every deep baseline shares with :class:`~flowsentinel.models.deep.CNNBiLSTMDetector`
#: (documented on :class:`~flowsentinel.models.deep.DeepClassifier`).
_TRAINING_PARAMS = (
    "batch_size", "max_epochs", "patience", "lr", "weight_decay", "class_weight", "val_fraction",
    "threshold", "feature_config", "random_state", "num_threads", "verbose",
)


def _store(estimator: Any, params: dict[str, Any]) -> None:
    """Store ``__init__`` arguments unchanged as attributes (scikit-learn style).

    One helper instead of twenty assignments per class; it only stores.
    """
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _DeepBaseline(DeepClassifier):
    """A deep baseline: :attr:`network` built with :attr:`arch_params`."""

    network: type[nn.Module]
    arch_params: tuple[str, ...] = ()

    def module_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "window": int(self.window)}
        for name in self.arch_params:
            value = getattr(self, name)
            out[name] = [int(v) for v in value] if isinstance(value, (tuple, list)) else value
        return out

    def build_module(self, n_inputs: int, n_classes: int) -> nn.Module:
        return self.network(n_inputs, n_classes, **self.module_kwargs())


class DNNDetector(_DeepBaseline):
    """A plain feed-forward network (:class:`~flowsentinel.models.baseline_networks.DNNNet`)."""

    network = nets.DNNNet
    arch_params = ("hidden_layers", "dropout")

    def __init__(
        self,
        task: str = "multiclass",
        mode: str = "flow",
        window: int = 8,
        window_key: str = "IPV4_SRC_ADDR",
        time_column: str | None = None,
        hidden_layers: tuple[int, ...] = (128, 64),
        dropout: float = 0.2,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 4,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        class_weight: str = "sqrt",
        val_fraction: float = 0.15,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        _store(self, locals())


class CNNDetector(_DeepBaseline):
    """A 1-D CNN (:class:`~flowsentinel.models.baseline_networks.CNNNet`)."""

    network = nets.CNNNet
    arch_params = ("conv_channels", "kernel_size", "pool", "dense", "dropout")

    def __init__(
        self,
        task: str = "multiclass",
        mode: str = "flow",
        window: int = 8,
        window_key: str = "IPV4_SRC_ADDR",
        time_column: str | None = None,
        conv_channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        dense: int = 64,
        dropout: float = 0.2,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 4,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        class_weight: str = "sqrt",
        val_fraction: float = 0.15,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        _store(self, locals())


class LSTMDetector(_DeepBaseline):
    """A unidirectional LSTM (:class:`~flowsentinel.models.baseline_networks.LSTMNet`)."""

    network = nets.LSTMNet
    arch_params = ("hidden", "layers", "dense", "dropout")

    def __init__(
        self,
        task: str = "multiclass",
        mode: str = "flow",
        window: int = 8,
        window_key: str = "IPV4_SRC_ADDR",
        time_column: str | None = None,
        hidden: int = 32,
        layers: int = 1,
        dense: int = 64,
        dropout: float = 0.2,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 4,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        class_weight: str = "sqrt",
        val_fraction: float = 0.15,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        _store(self, locals())


class CNNLSTMDetector(_DeepBaseline):
    """Convolutions under an LSTM (:class:`~flowsentinel.models.baseline_networks.CNNLSTMNet`)."""

    network = nets.CNNLSTMNet
    arch_params = ("conv_channels", "kernel_size", "pool", "hidden", "dense", "dropout")

    def __init__(
        self,
        task: str = "multiclass",
        mode: str = "flow",
        window: int = 8,
        window_key: str = "IPV4_SRC_ADDR",
        time_column: str | None = None,
        conv_channels: tuple[int, ...] = (32, 64),
        kernel_size: int = 3,
        pool: int = 4,
        hidden: int = 32,
        dense: int = 64,
        dropout: float = 0.2,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 4,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        class_weight: str = "sqrt",
        val_fraction: float = 0.15,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        _store(self, locals())


class CNNGRUDetector(CNNLSTMDetector):
    """Convolutions under a GRU (:class:`~flowsentinel.models.baseline_networks.CNNGRUNet`)."""

    network = nets.CNNGRUNet


class TCNDetector(_DeepBaseline):
    """A temporal convolutional network (:class:`~flowsentinel.models.baseline_networks.TCNNet`)."""

    network = nets.TCNNet
    arch_params = ("channels", "kernel_size", "dense", "dropout")

    def __init__(
        self,
        task: str = "multiclass",
        mode: str = "flow",
        window: int = 8,
        window_key: str = "IPV4_SRC_ADDR",
        time_column: str | None = None,
        channels: tuple[int, ...] = (32, 32, 32),
        kernel_size: int = 3,
        dense: int = 64,
        dropout: float = 0.2,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 4,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        class_weight: str = "sqrt",
        val_fraction: float = 0.15,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        _store(self, locals())


DEEP_BASELINES = (DNNDetector, CNNDetector, LSTMDetector, CNNLSTMDetector, CNNGRUDetector, TCNDetector)


class LightGBMDetector(BaseDetector):
    """Gradient-boosted trees (LightGBM's scikit-learn API) behind the detector contract.

    Scoring goes through the fitted booster, which is also what is saved (as
    LightGBM's own text model inside JSON, never pickled), so a loaded model
    scores exactly as the fitted one.

    Args:
        n_estimators, learning_rate, num_leaves, max_depth, min_child_samples,
        subsample, colsample_bytree: as in ``lightgbm.LGBMClassifier``.
        class_weight: ``None`` or ``"balanced"``.
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
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        n_jobs: int = -1,
    ):
        _store(self, locals())

    def fit(self, X: pd.DataFrame, y: Any = None, X_val: pd.DataFrame | None = None, y_val: Any = None):
        """Fit on ``X`` (validation flows are not needed: no early stopping)."""
        import lightgbm

        t0 = time.perf_counter()
        codes = self._set_classes(self._targets(X, y))
        if len(self.classes_) < 2:
            raise DataError(f"LightGBM needs at least two classes in training, got {list(self.classes_)}")
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
        self.threshold_ = 0.5 if self.threshold is None else float(self.threshold)
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        matrix = self._transform(X)
        raw = np.asarray(self.booster_.predict(matrix, num_threads=max(int(self.n_jobs), 0)), dtype="float64")
        if raw.ndim == 1:  # binary objective: P(class 1)
            raw = np.column_stack([1.0 - raw, raw])
        return raw

    # ---- persistence (no pickle) -------------------------------------------
    def save_state(self, directory: str | Path) -> dict[str, Any]:
        """Write the booster as LightGBM's text model in ``lightgbm_model.json``."""
        name = "lightgbm_model.json"
        Path(directory, name).write_text(json.dumps({"model": self.booster_.model_to_string()}))
        return {"booster": name}

    def load_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        import lightgbm

        text = json.loads(Path(directory, state["booster"]).read_text())["model"]
        self.booster_ = lightgbm.Booster(model_str=text)
