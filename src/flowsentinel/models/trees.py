"""Tree-ensemble detectors behind the same contract as the deep models.

Fitted forests are saved without pickle: every tree's node table (children,
split feature and threshold, ...) and leaf values go to safetensors, one
array per field, and the forest is rebuilt around them on loading
(:func:`tree_arrays`, :func:`tree_from_arrays`). The node layout is
scikit-learn's; the saved manifest records its version.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(500, random_state=0)
>>> det = ExtraTreesDetector(n_estimators=10).fit(flows)
>>> det.predict(flows[:3]).shape
(3,)
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from ..features import FeatureConfig
from .base import BaseDetector, DetectorState
from .params import positive_int

__all__ = ["ExtraTreesDetector", "RandomForestDetector", "tree_arrays", "tree_from_arrays", "forest_arrays",
           "forest_from_arrays"]


def tree_arrays(tree) -> dict[str, np.ndarray]:
    """A fitted scikit-learn ``Tree`` as plain arrays: one per node field, plus ``values``."""
    state = tree.__getstate__()
    nodes = state["nodes"]
    out = {name: np.ascontiguousarray(nodes[name]) for name in nodes.dtype.names}
    out["values"] = np.ascontiguousarray(state["values"])
    return out


def tree_from_arrays(arrays: dict[str, np.ndarray], n_features: int, n_classes: int, max_depth: int):
    """Rebuild a scikit-learn ``Tree`` from :func:`tree_arrays` output (``n_classes`` 1 for regression)."""
    from sklearn.tree._tree import Tree

    tree = Tree(int(n_features), np.asarray([int(n_classes)], dtype=np.intp), 1)
    dtype = tree.__getstate__()["nodes"].dtype
    missing = [f for f in dtype.names if f not in arrays]
    if missing:
        raise DataError(f"saved tree lacks node field(s) {', '.join(missing)}: saved by another scikit-learn version")
    nodes = np.empty(len(arrays["left_child"]), dtype=dtype)
    for name in dtype.names:
        nodes[name] = arrays[name]
    tree.__setstate__({"max_depth": int(max_depth), "node_count": len(nodes), "nodes": nodes,
                       "values": np.ascontiguousarray(arrays["values"])})
    return tree


def forest_arrays(estimators) -> dict[str, np.ndarray]:
    """Every tree's arrays under keys ``t<i>.<field>``, for one safetensors file."""
    arrays: dict[str, np.ndarray] = {}
    for i, est in enumerate(estimators):
        arrays.update({f"t{i}.{k}": v for k, v in tree_arrays(est.tree_).items()})
    return arrays


def forest_from_arrays(arrays: dict[str, np.ndarray], depths: list[int], n_features: int, n_classes: int) -> list:
    """The trees :func:`forest_arrays` wrote, rebuilt."""
    trees = []
    for i, depth in enumerate(depths):
        prefix = f"t{i}."
        fields = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        trees.append(tree_from_arrays(fields, n_features, n_classes, depth))
    return trees


class _SklearnForest(BaseDetector):
    """A scikit-learn forest behind the detector contract; trees saved as safetensors arrays."""

    def _make(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_params(self) -> None:
        positive_int("n_estimators", self.n_estimators)
        if self.max_depth is not None:
            positive_int("max_depth", self.max_depth)
        if self.n_jobs is not None and not (isinstance(self.n_jobs, int) and self.n_jobs != 0):
            raise ConfigError(f"n_jobs must be a non-zero whole number (-1: all cores); got {self.n_jobs!r}")

    def _fit(self, X, y, X_val, y_val) -> None:
        codes = self._set_classes(y)
        matrix = self._fit_features(X)
        self.estimator_ = self._make().fit(matrix, codes)

    def _proba_matrix(self, matrix: np.ndarray) -> np.ndarray:
        proba = np.zeros((len(matrix), len(self.classes_)))
        proba[:, self.estimator_.classes_] = self.estimator_.predict_proba(matrix)
        return proba

    # ---- state (no pickle) -------------------------------------------------
    def _get_state(self) -> DetectorState:
        est = self.estimator_
        arrays = forest_arrays(est.estimators_)
        arrays["classes"] = np.asarray(est.classes_, dtype=np.int64)
        return DetectorState(arrays, {"depths": [int(e.tree_.max_depth) for e in est.estimators_],
                                      "n_features": int(est.n_features_in_),
                                      "max_features": [int(t.max_features_) for t in est.estimators_]})

    def _set_state(self, state: DetectorState) -> None:
        from sklearn.base import clone

        est = self._make()
        n_features = int(state.fields["n_features"])
        classes = state.arrays["classes"]
        trees = forest_from_arrays(state.arrays, state.fields["depths"], n_features, len(classes))
        subs = []
        for tree, max_features in zip(trees, state.fields["max_features"]):
            sub = clone(est.estimator)
            sub.n_features_in_, sub.n_outputs_, sub.max_features_ = n_features, 1, max_features
            sub.classes_, sub.n_classes_ = np.arange(len(classes)), len(classes)
            sub.tree_ = tree
            subs.append(sub)
        est.estimator_ = clone(est.estimator)
        est.estimators_ = subs
        est.n_features_in_, est.n_outputs_ = n_features, 1
        est.classes_, est.n_classes_ = classes, len(classes)
        self.estimator_ = est


class ExtraTreesDetector(_SklearnForest):
    """Extra Trees, the NF dataset authors' baseline (100 trees by default)."""

    def __init__(
        self,
        task: str = "multiclass",
        n_estimators: int = 100,
        max_depth: int | None = None,
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
        self.max_depth = max_depth
        self.class_weight = class_weight
        self.threshold = threshold
        self.target_far = target_far
        self.val_fraction = val_fraction
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
