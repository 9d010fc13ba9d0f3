"""Anomaly detectors that learn benign traffic only, for attacks no label has seen.

* :class:`PCADetector`: multivariate statistical network monitoring. A PCA
  model of benign flows gives two statistics per flow: Hotelling's T² (how
  far the flow lies *inside* the benign subspace, in units of each
  component's variance) and the residual Q / SPE (squared distance *off* that
  subspace).
* :class:`IsolationForestDetector`: scikit-learn's Isolation Forest.
* :class:`AutoencoderDetector`: a dense autoencoder scored by reconstruction
  error, as Kitsune does, trained with the project's one training loop
  (:class:`~flowsentinel.training.loop.Trainer`) by giving it the inputs as
  targets and a mean-squared-error loss.

Every one of them:

* ``fit(X, y)`` keeps the rows whose ``Attack`` is ``Benign`` (all rows when
  the table has no labels) and holds out ``val_fraction`` of them, unless
  ``X_val`` is given (its benign rows are used);
* :meth:`~_UnsupervisedDetector.score_samples` is the raw anomaly statistic
  (non-negative, higher = more anomalous); ``raw_threshold_`` is its
  ``1 - target_far`` quantile on the benign validation flows;
* ``classes_`` is ``["Benign", "Attack"]`` and ``predict_proba`` a
  pseudo-probability, not a calibrated one: the odds of attack are the raw
  score over ``raw_threshold_``, i.e. ``P(attack) = s / (s + raw_threshold_)``.
  A flow at the raw threshold has ``P(attack) = 0.5``; half the threshold
  gives 1/3, twice the threshold 2/3;
* ``decision_function`` is that ``P(attack)``, a monotone map of the raw
  score, so the base contract (``1 - P(benign)``) holds unchanged, and
  ``threshold_`` (the ``1 - target_far`` quantile of ``decision_function``
  on the benign validation flows) is 0.5 unless ``threshold`` is given.
  It is saved with the model.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(1500, random_state=0, balance=0.3)
>>> det = PCADetector().fit(flows)
>>> list(det.classes_), det.threshold_
(['Benign', 'Attack'], 0.5)
>>> benign = flows[flows["Attack"] == "Benign"]
>>> bool(det.decision_function(flows).mean() > det.decision_function(benign).mean())
True
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError, DataError
from ..features import FeatureConfig
from ..schema import ATTACK_COLUMN, BENIGN_CLASS
from ..training.loop import (
    ArraySource,
    BestCheckpoint,
    EarlyStopping,
    ProgressBar,
    Trainer,
    predict_logits,
)
from .base import ATTACK_BINARY_CLASS, BaseDetector, binary_labels

__all__ = ["PCADetector", "IsolationForestDetector", "AutoencoderDetector", "AutoencoderNet", "pseudo_probability"]

log = logging.getLogger(__name__)


def pseudo_probability(scores: np.ndarray, raw_threshold: float) -> np.ndarray:
    """``P(attack) = s / (s + raw_threshold)`` for non-negative raw scores ``s``.

    >>> pseudo_probability(np.array([0.0, 1.0, 2.0]), 1.0).round(3).tolist()
    [0.0, 0.5, 0.667]
    """
    s = np.maximum(np.asarray(scores, dtype="float64"), 0.0)
    t = max(float(raw_threshold), np.finfo("float64").tiny)
    return s / (s + t)


class _UnsupervisedDetector(BaseDetector):
    """Benign-only fitting, validation hold-out and the target-FAR threshold.

    Subclasses implement ``_fit_matrix(train, val)`` and ``_raw_scores(matrix)``.
    """

    kind = "unsupervised"
    task = "binary"

    # ---- hooks -------------------------------------------------------------
    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw_scores(self, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_raw_threshold(self, value: float) -> None:
        self.raw_threshold_ = float(value)

    # ---- fitting -----------------------------------------------------------
    def _benign_rows(self, X: pd.DataFrame, y: Any, where: str) -> pd.DataFrame:
        if y is None and ATTACK_COLUMN not in X.columns:
            log.warning("%s has no labels: taking all %d flows as benign", where, len(X))
            return X.reset_index(drop=True)
        labels = binary_labels(self._targets(X, y))
        keep = labels == BENIGN_CLASS
        if not keep.any():
            raise DataError(f"{where}: no benign flows to learn from ({len(X)} flows, all attacks)")
        return X.iloc[np.flatnonzero(keep)].reset_index(drop=True)

    def fit(self, X: pd.DataFrame, y: Any = None, X_val: pd.DataFrame | None = None, y_val: Any = None):
        """Learn benign traffic from the benign rows of ``X``; returns self."""
        t0 = time.perf_counter()
        if not 0.0 < self.target_far < 1.0:
            raise ConfigError(f"target_far must be in (0, 1), got {self.target_far!r}")
        benign = self._benign_rows(X, y, "training flows")
        if X_val is None:
            rng = np.random.default_rng(self.random_state)
            order = rng.permutation(len(benign))
            n_val = int(round(len(benign) * self.val_fraction))
            if n_val < 1 or len(benign) - n_val < 2:
                raise DataError(
                    f"{len(benign)} benign training flows are too few to hold out {self.val_fraction:.0%} for the threshold"
                )
            val = benign.iloc[np.sort(order[:n_val])].reset_index(drop=True)
            train = benign.iloc[np.sort(order[n_val:])].reset_index(drop=True)
        else:
            train, val = benign, self._benign_rows(X_val, y_val, "validation flows")
        self.classes_ = np.asarray([BENIGN_CLASS, ATTACK_BINARY_CLASS], dtype=object)
        train_matrix = self._fit_features(train)
        val_matrix = self.features_.transform(val)
        self._fit_matrix(train_matrix, val_matrix)
        val_scores = self._raw_scores(val_matrix)
        # "higher" picks an observed score, so at most target_far of the
        # validation flows lie strictly above it.
        self._set_raw_threshold(np.quantile(val_scores, 1.0 - self.target_far, method="higher"))
        if self.threshold is None:
            p = pseudo_probability(val_scores, self.raw_threshold_)
            self.threshold_ = float(np.quantile(p, 1.0 - self.target_far, method="higher"))
        else:
            self.threshold_ = float(self.threshold)
        self.validation_far_ = float((pseudo_probability(val_scores, self.raw_threshold_) >= self.threshold_).mean())
        self.n_train_flows_ = int(len(train))
        self.n_val_flows_ = int(len(val))
        self.fit_seconds_ = time.perf_counter() - t0
        log.info(
            "%s: %d benign flows to fit, %d to set the threshold (false-alarm rate %.4f on them, target %.4f)",
            type(self).__name__, len(train), len(val), self.validation_far_, self.target_far,
        )
        return self

    # ---- scoring -----------------------------------------------------------
    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """The raw anomaly statistic per flow (non-negative; higher = more anomalous)."""
        return self._raw_scores(self._transform(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns ``[P(benign), P(attack)]`` with the pseudo-probability of the module docstring."""
        p = pseudo_probability(self.score_samples(X), self.raw_threshold_)
        return np.column_stack([1.0 - p, p])

    def scores_from_proba(self, proba: np.ndarray) -> np.ndarray:
        return np.asarray(proba, dtype="float64")[:, 1]

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        labels = np.full(len(proba), ATTACK_BINARY_CLASS, dtype=object)
        labels[self.scores_from_proba(proba) < self.threshold_] = BENIGN_CLASS
        return labels


class PCADetector(_UnsupervisedDetector):
    """Hotelling's T² and the residual (Q / SPE) of a PCA model of benign flows.

    Args:
        n_components: components kept: an int, or a share of variance in
            (0, 1) (the fewest components that explain it).
        statistic: ``combined`` (the larger of T² and Q, each divided by its
            ``1 - target_far`` quantile on the fitting flows, as multivariate
            statistical network monitoring combines its two charts),
            ``t2`` or ``residual``.
        target_far: false-alarm rate on benign validation flows that sets
            the threshold.
        val_fraction: share of benign training flows held out for it.
        threshold: a fixed threshold on ``decision_function`` instead.
        random_state: seeds the validation hold-out.

    >>> from flowsentinel.synthetic import generate_flows
    >>> det = PCADetector(n_components=3).fit(generate_flows(800, random_state=1))
    >>> stats = det.statistics(generate_flows(200, random_state=2))
    >>> sorted(stats), stats["t2"].shape
    (['residual', 't2'], (200,))
    """

    def __init__(
        self,
        n_components: float | int = 0.95,
        statistic: str = "combined",
        target_far: float = 0.01,
        val_fraction: float = 0.2,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
    ):
        self.n_components = n_components
        self.statistic = statistic
        self.target_far = target_far
        self.val_fraction = val_fraction
        self.threshold = threshold
        self.feature_config = feature_config
        self.random_state = random_state

    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:
        if self.statistic not in ("combined", "t2", "residual"):
            raise ConfigError(f"statistic must be 'combined', 't2' or 'residual', got {self.statistic!r}")
        X = train.astype("float64")
        self.mean_ = X.mean(axis=0)
        centered = X - self.mean_
        cov = centered.T @ centered / max(len(X) - 1, 1)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.maximum(eigval[order], 0.0), eigvec[:, order]
        # A sign convention makes the components reproducible across platforms.
        eigvec *= np.where(eigvec[np.abs(eigvec).argmax(axis=0), range(eigvec.shape[1])] < 0, -1.0, 1.0)
        if isinstance(self.n_components, float) and 0.0 < self.n_components < 1.0:
            share = np.cumsum(eigval) / max(eigval.sum(), 1e-300)
            k = int(np.searchsorted(share, self.n_components) + 1)
        else:
            k = int(self.n_components)
        k = max(1, min(k, int((eigval > 1e-12 * max(eigval[0], 1e-300)).sum()) or 1))
        self.components_ = eigvec[:, :k].T.copy()
        self.explained_variance_ = eigval[:k].copy()
        self.n_components_ = k
        t2, q = self._statistics(X)
        self.t2_limit_ = float(max(np.quantile(t2, 1.0 - self.target_far), 1e-12))
        self.residual_limit_ = float(max(np.quantile(q, 1.0 - self.target_far), 1e-12))

    def _statistics(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centered = matrix.astype("float64") - self.mean_
        scores = centered @ self.components_.T
        t2 = (scores**2 / np.maximum(self.explained_variance_, 1e-12)).sum(axis=1)
        residual = centered - scores @ self.components_
        return t2, (residual**2).sum(axis=1)

    def statistics(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Hotelling's T² and the residual (squared prediction error) per flow."""
        t2, q = self._statistics(self._transform(X))
        return {"t2": t2, "residual": q}

    def _raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        t2, q = self._statistics(matrix)
        if self.statistic == "t2":
            return t2
        if self.statistic == "residual":
            return q
        return np.maximum(t2 / self.t2_limit_, q / self.residual_limit_)

    # ---- persistence (no pickle) -------------------------------------------
    def save_state(self, directory: str | Path) -> dict[str, Any]:
        from safetensors.numpy import save_file

        save_file(
            {"mean": self.mean_, "components": self.components_, "explained_variance": self.explained_variance_},
            str(Path(directory) / "pca.safetensors"),
        )
        return {
            "arrays": "pca.safetensors",
            "raw_threshold": self.raw_threshold_,
            "t2_limit": self.t2_limit_,
            "residual_limit": self.residual_limit_,
        }

    def load_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        from safetensors.numpy import load_file

        arrays = load_file(str(Path(directory) / state["arrays"]))
        self.mean_, self.components_ = arrays["mean"], arrays["components"]
        self.explained_variance_ = arrays["explained_variance"]
        self.n_components_ = len(self.components_)
        self.raw_threshold_ = float(state["raw_threshold"])
        self.t2_limit_, self.residual_limit_ = float(state["t2_limit"]), float(state["residual_limit"])


class IsolationForestDetector(_UnsupervisedDetector):
    """Isolation Forest on benign flows; the raw score is ``-score_samples`` of scikit-learn's.

    That raw score is the forest's anomaly score ``2 ** (-E[h(x)] / c(n))``
    in (0, 1]: near 1 for flows isolated in few splits.

    Args:
        n_estimators, max_samples, max_features: as in
            ``sklearn.ensemble.IsolationForest``.
        n_jobs: threads.
        target_far, val_fraction, threshold, random_state: as for :class:`PCADetector`.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        max_features: float = 1.0,
        target_far: float = 0.01,
        val_fraction: float = 0.2,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        n_jobs: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.target_far = target_far
        self.val_fraction = val_fraction
        self.threshold = threshold
        self.feature_config = feature_config
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        self.estimator_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(train)

    def _raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        return -self.estimator_.score_samples(matrix)

    # ---- persistence (no pickle) -------------------------------------------
    def save_state(self, directory: str | Path) -> dict[str, Any]:
        """Trees, their feature subsets and path-length tables to ``isolation_forest.safetensors``."""
        from .trees import save_trees

        est = self.estimator_
        extra = {}
        for i in range(len(est.estimators_)):
            extra[f"features{i}"] = np.asarray(est.estimators_features_[i], dtype=np.int64)
            extra[f"path_lengths{i}"] = np.asarray(est._decision_path_lengths[i])
            extra[f"average_path_length{i}"] = np.asarray(est._average_path_length_per_tree[i])
        depths = save_trees(est.estimators_, Path(directory) / "isolation_forest.safetensors", extra)
        return {
            "trees": "isolation_forest.safetensors",
            "depths": depths,
            "n_features": int(est.n_features_in_),
            "tree_features": int(est._max_features),
            "max_samples": int(est._max_samples),
            "offset": float(est.offset_),
            "raw_threshold": self.raw_threshold_,
        }

    def load_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        from sklearn.base import clone
        from sklearn.ensemble import IsolationForest
        from sklearn.tree import ExtraTreeRegressor

        from .trees import load_trees

        est = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                              max_features=self.max_features, random_state=self.random_state, n_jobs=self.n_jobs)
        trees, arrays = load_trees(Path(directory) / state["trees"], state["depths"], state["tree_features"], 1)
        est.estimator_ = ExtraTreeRegressor(max_features=1, splitter="random", random_state=self.random_state)
        subs = []
        for tree in trees:
            sub = clone(est.estimator_)
            sub.n_features_in_, sub.n_outputs_, sub.max_features_ = state["tree_features"], 1, state["tree_features"]
            sub.tree_ = tree
            subs.append(sub)
        n = len(subs)
        est.estimators_ = subs
        est.estimators_features_ = [arrays[f"features{i}"] for i in range(n)]
        est._decision_path_lengths = tuple(arrays[f"path_lengths{i}"] for i in range(n))
        est._average_path_length_per_tree = tuple(arrays[f"average_path_length{i}"] for i in range(n))
        est.n_features_in_, est._max_features = state["n_features"], state["tree_features"]
        est._max_samples = est.max_samples_ = state["max_samples"]
        est.offset_ = state["offset"]
        self.estimator_ = est
        self.raw_threshold_ = float(state["raw_threshold"])


class AutoencoderNet(nn.Module):
    """A dense autoencoder: encoder ``hidden_layers``, mirrored decoder, linear output.

    The buffer ``raw_threshold`` holds the detector's fitted reconstruction
    error threshold, so that it travels with the weights.

    >>> net = AutoencoderNet(20, hidden_layers=(16, 4)).eval()
    >>> net(torch.zeros(3, 20)).shape
    torch.Size([3, 20])
    """

    def __init__(self, n_features: int, hidden_layers: Sequence[int] = (32, 8), dropout: float = 0.0):
        super().__init__()
        sizes = [n_features, *hidden_layers]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.encoder = nn.Sequential(*layers)
        back = sizes[::-1]
        layers = []
        for a, b in zip(back[:-2], back[1:-1]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(back[-2], back[-1]))
        self.decoder = nn.Sequential(*layers)
        self.register_buffer("raw_threshold", torch.ones((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _reconstruction_metrics(target: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
    # The loop's early stopping and checkpoint maximise: watch the negated error.
    return {"neg_mse": -float(np.mean((reconstruction - target) ** 2))}


class AutoencoderDetector(_UnsupervisedDetector):
    """Reconstruction error of a dense autoencoder trained on benign flows.

    The raw score is the mean squared error between a flow's (standardised)
    features and their reconstruction. Training goes through the shared
    :class:`~flowsentinel.training.loop.Trainer` unchanged: the targets are
    the inputs, the loss is ``nn.MSELoss``, and early stopping and the best
    checkpoint watch the validation error.

    Args:
        hidden_layers: encoder widths (the decoder mirrors them).
        dropout: after each hidden layer.
        batch_size, max_epochs, patience, lr, weight_decay: training.
        target_far, val_fraction, threshold, random_state: as for :class:`PCADetector`.
        num_threads: torch CPU threads (``None`` leaves torch's default).
        verbose: progress bars and per-epoch log lines.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (32, 8),
        dropout: float = 0.0,
        batch_size: int = 256,
        max_epochs: int = 30,
        patience: int = 5,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        target_far: float = 0.01,
        val_fraction: float = 0.2,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.weight_decay = weight_decay
        self.target_far = target_far
        self.val_fraction = val_fraction
        self.threshold = threshold
        self.feature_config = feature_config
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def module_kwargs(self) -> dict[str, Any]:
        """Architecture arguments, saved with the weights so the net can be rebuilt."""
        return {"hidden_layers": [int(h) for h in self.hidden_layers], "dropout": float(self.dropout)}

    def build_module(self, n_inputs: int, n_classes: int = 2) -> nn.Module:
        """The network for ``n_inputs`` features (``n_classes`` is unused: outputs are the inputs)."""
        return AutoencoderNet(n_inputs, **self.module_kwargs())

    @property
    def raw_threshold_(self) -> float:
        """The reconstruction-error threshold, kept in the network's buffer."""
        if not hasattr(self, "module_"):
            raise AttributeError("raw_threshold_")
        return float(self.module_.raw_threshold)

    def _set_raw_threshold(self, value: float) -> None:
        self.module_.raw_threshold.fill_(float(value))

    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        torch.manual_seed(self.random_state)
        self.module_ = self.build_module(train.shape[1])
        optimizer = torch.optim.AdamW(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        trainer = Trainer(
            self.module_,
            nn.MSELoss(),
            optimizer,
            _reconstruction_metrics,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            callbacks=[EarlyStopping("neg_mse", self.patience), BestCheckpoint("neg_mse"), ProgressBar(self.verbose)],
            seed=self.random_state,
        )
        train = np.ascontiguousarray(train, dtype=np.float32)
        val = np.ascontiguousarray(val, dtype=np.float32)
        trainer.fit(ArraySource(train), train, ArraySource(val), val)
        self.module_.eval()
        self.history_ = [
            {"epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss, "seconds": r.seconds,
             "flows_per_s": r.flows_per_s}
            for r in trainer.history
        ]
        self.best_epoch_ = trainer.best_epoch

    def _raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        recon = predict_logits(self.module_, ArraySource(matrix))
        return ((recon.astype("float64") - matrix) ** 2).mean(axis=1)
