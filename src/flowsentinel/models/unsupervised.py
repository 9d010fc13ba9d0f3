"""Anomaly detectors that learn benign traffic only, for attacks no label has seen.

* :class:`PCADetector`: multivariate statistical network monitoring. A PCA
  model of benign flows gives two statistics per flow: Hotelling's T² (how
  far the flow lies *inside* the benign subspace, in units of each
  component's variance) and the residual Q / SPE (squared distance *off* that
  subspace).
* :class:`IsolationForestDetector`: scikit-learn's Isolation Forest.
* :class:`~flowsentinel.models.autoencoder.AutoencoderDetector`: a dense
  autoencoder scored by reconstruction error, as Kitsune does (its own
  module: it needs PyTorch, these two do not).

Every one of them:

* ``fit(X, y)`` keeps the rows whose ``Attack`` is ``Benign`` (all rows when
  the table has no labels); validation rows are ``X_val``'s benign ones, or a
  stratified hold-out of ``val_fraction`` of the training rows;
* :meth:`~UnsupervisedDetector.score_samples` is the raw anomaly statistic
  (non-negative, higher = more anomalous); ``raw_threshold_`` is set on it by
  the one :class:`~flowsentinel.models.thresholds.ThresholdPolicy`: the
  lowest value that at most ``target_far`` of the benign validation flows
  reach;
* ``classes_`` is ``["Benign", "Attack"]`` and ``predict_proba`` a
  pseudo-probability, not a calibrated one: the odds of attack are the raw
  score over ``raw_threshold_``, i.e. ``P(attack) = s / (s + raw_threshold_)``.
  A flow at the raw threshold has ``P(attack) = 0.5``; half the threshold
  gives 1/3, twice the threshold 2/3;
* ``decision_function`` is that ``P(attack)``, a monotone map of the raw
  score, so the base contract (``1 - P(benign)``) holds unchanged, and
  ``threshold_`` is 0.5 (a flow is an alert exactly when its raw score
  reaches ``raw_threshold_``) unless a fixed ``threshold`` is given.

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

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError
from ..features import FeatureConfig
from ..schema import BENIGN_CLASS
from .base import ATTACK_BINARY_CLASS, BaseDetector, DetectorState
from .params import number_in
from .thresholds import DEFAULT_THRESHOLD, ThresholdPolicy

__all__ = ["UnsupervisedDetector", "PCADetector", "IsolationForestDetector", "pseudo_probability"]

log = logging.getLogger(__name__)


def pseudo_probability(scores: np.ndarray, raw_threshold: float) -> np.ndarray:
    """``P(attack) = s / (s + raw_threshold)`` for non-negative raw scores ``s``.

    >>> pseudo_probability(np.array([0.0, 1.0, 2.0]), 1.0).round(3).tolist()
    [0.0, 0.5, 0.667]
    """
    s = np.maximum(np.asarray(scores, dtype="float64"), 0.0)
    t = max(float(raw_threshold), np.finfo("float64").tiny)
    p = s / (s + t)
    # Exactly on the right side of 0.5: a raw score one ulp below the raw threshold can
    # round to 0.5 in the division, and the threshold policy is exact on the raw scores.
    return np.where(s < t, np.minimum(p, np.nextafter(0.5, 0.0)), np.maximum(p, 0.5))


class UnsupervisedDetector(BaseDetector):
    """Benign-only fitting and the raw threshold; subclasses implement
    ``_fit_matrix(train, val)`` and ``_raw_scores(matrix)``."""

    kind = "unsupervised"
    task = "binary"
    needs_validation = True

    # ---- hooks -------------------------------------------------------------
    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw_scores(self, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_raw_threshold(self, value: float) -> None:
        self.raw_threshold_ = float(value)

    def check_params(self) -> None:
        number_in("target_far", self.target_far, 0.0, 1.0, low_open=True, high_open=True)
        super().check_params()

    # ---- fitting -----------------------------------------------------------
    @staticmethod
    def _benign_rows(X: pd.DataFrame, y: np.ndarray | None, where: str) -> pd.DataFrame:
        if y is None:
            log.warning("%s have no labels: taking all %d flows as benign", where, len(X))
            return X.reset_index(drop=True)
        keep = np.asarray(y) == BENIGN_CLASS
        if not keep.any():
            raise DataError(f"{where}: no benign flows to learn from ({len(X)} flows, all attacks)")
        return X.iloc[np.flatnonzero(keep)].reset_index(drop=True)

    def _hold_out(self, X: pd.DataFrame, y: np.ndarray | None):
        """``val_fraction`` of the benign rows, drawn from the benign rows alone, so that
        attack rows in the training table change nothing."""
        benign = self._benign_rows(X, y, "training flows")
        order = np.random.default_rng(self.random_state).permutation(len(benign))
        n_val = int(round(len(benign) * self.val_fraction))
        if n_val < 1 or len(benign) - n_val < 2:
            raise DataError(f"{len(benign)} benign training flows are too few to hold out {self.val_fraction:.0%} "
                            "for the threshold")
        val = benign.iloc[np.sort(order[:n_val])].reset_index(drop=True)
        train = benign.iloc[np.sort(order[n_val:])].reset_index(drop=True)
        labels = None if y is None else np.full(len(benign), BENIGN_CLASS, dtype=object)
        return train, None if labels is None else labels[: len(train)], val, None if labels is None else labels[:n_val]

    def _fit(self, X, y, X_val, y_val) -> None:
        train = self._benign_rows(X, y, "training flows")
        val = self._benign_rows(X_val, y_val, "validation flows")
        if len(train) < 2:
            raise DataError(f"{len(train)} benign training flow(s) are too few to learn benign traffic from")
        self.classes_ = np.asarray([BENIGN_CLASS, ATTACK_BINARY_CLASS], dtype=object)
        train_matrix = self._fit_features(train)
        val_matrix = self.features_.transform(val)
        self._fit_matrix(train_matrix, val_matrix)
        val_scores = self._raw_scores(val_matrix)
        self._set_raw_threshold(ThresholdPolicy(target_far=self.target_far).fit(val_scores))
        self.validation_far_ = float((val_scores >= self.raw_threshold_).mean())
        self.n_train_flows_ = int(len(train))
        self.n_val_flows_ = int(len(val))
        log.info(
            "%s: %d benign flows to fit, %d to set the threshold (false-alarm rate %.4f on them, target %.4f)",
            type(self).__name__, len(train), len(val), self.validation_far_, self.target_far,
        )

    def _fit_threshold(self, policy, X_val, y_val) -> float:
        # The policy has already been applied to the raw statistic; on the pseudo-probability
        # the raw threshold is 0.5 by construction.
        return DEFAULT_THRESHOLD if self.threshold is None else float(self.threshold)

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


class PCADetector(UnsupervisedDetector):
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

    def _check_params(self) -> None:
        if self.statistic not in ("combined", "t2", "residual"):
            raise ConfigError(f"statistic must be 'combined', 't2' or 'residual', got {self.statistic!r}")

    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:
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

    # ---- state (no pickle) -------------------------------------------------
    def _get_state(self) -> DetectorState:
        return DetectorState(
            {"mean": self.mean_, "components": self.components_, "explained_variance": self.explained_variance_},
            {"raw_threshold": self.raw_threshold_, "t2_limit": self.t2_limit_, "residual_limit": self.residual_limit_},
        )

    def _set_state(self, state: DetectorState) -> None:
        a, f = state.arrays, state.fields
        self.mean_, self.components_, self.explained_variance_ = a["mean"], a["components"], a["explained_variance"]
        self.n_components_ = len(self.components_)
        self.raw_threshold_ = float(f["raw_threshold"])
        self.t2_limit_, self.residual_limit_ = float(f["t2_limit"]), float(f["residual_limit"])


class IsolationForestDetector(UnsupervisedDetector):
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

    # ---- state (no pickle) -------------------------------------------------
    def _get_state(self) -> DetectorState:
        """Trees, their feature subsets and path-length tables as arrays."""
        from .trees import forest_arrays

        est = self.estimator_
        arrays = forest_arrays(est.estimators_)
        for i in range(len(est.estimators_)):
            arrays[f"features{i}"] = np.asarray(est.estimators_features_[i], dtype=np.int64)
            arrays[f"path_lengths{i}"] = np.asarray(est._decision_path_lengths[i])
            arrays[f"average_path_length{i}"] = np.asarray(est._average_path_length_per_tree[i])
        return DetectorState(arrays, {
            "depths": [int(e.tree_.max_depth) for e in est.estimators_],
            "n_features": int(est.n_features_in_),
            "tree_features": int(est._max_features),
            "max_samples": int(est._max_samples),
            "offset": float(est.offset_),
            "raw_threshold": self.raw_threshold_,
        })

    def _set_state(self, state: DetectorState) -> None:
        from sklearn.base import clone
        from sklearn.ensemble import IsolationForest
        from sklearn.tree import ExtraTreeRegressor

        from .trees import forest_from_arrays

        f, arrays = state.fields, state.arrays
        est = IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                              max_features=self.max_features, random_state=self.random_state, n_jobs=self.n_jobs)
        trees = forest_from_arrays(arrays, f["depths"], f["tree_features"], 1)
        est.estimator_ = ExtraTreeRegressor(max_features=1, splitter="random", random_state=self.random_state)
        subs = []
        for tree in trees:
            sub = clone(est.estimator_)
            sub.n_features_in_, sub.n_outputs_, sub.max_features_ = f["tree_features"], 1, f["tree_features"]
            sub.tree_ = tree
            subs.append(sub)
        n = len(subs)
        est.estimators_ = subs
        est.estimators_features_ = [arrays[f"features{i}"] for i in range(n)]
        est._decision_path_lengths = tuple(arrays[f"path_lengths{i}"] for i in range(n))
        est._average_path_length_per_tree = tuple(arrays[f"average_path_length{i}"] for i in range(n))
        est.n_features_in_, est._max_features = f["n_features"], f["tree_features"]
        est._max_samples = est.max_samples_ = f["max_samples"]
        est.offset_ = f["offset"]
        self.estimator_ = est
        self.raw_threshold_ = float(f["raw_threshold"])
