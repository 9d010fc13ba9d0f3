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

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..features import FeatureConfig
from .base import BaseDetector

__all__ = ["ExtraTreesDetector", "RandomForestDetector", "tree_arrays", "tree_from_arrays", "save_trees", "load_trees"]


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
        raise ValueError(f"saved tree lacks node field(s) {', '.join(missing)}: saved by another scikit-learn version")
    nodes = np.empty(len(arrays["left_child"]), dtype=dtype)
    for name in dtype.names:
        nodes[name] = arrays[name]
    tree.__setstate__({"max_depth": int(max_depth), "node_count": len(nodes), "nodes": nodes,
                       "values": np.ascontiguousarray(arrays["values"])})
    return tree


def save_trees(estimators, path: Path, extra: dict[str, np.ndarray] | None = None) -> list[int]:
    """Write every tree's arrays (keys ``t<i>.<field>``) to one safetensors file; returns max depths."""
    from safetensors.numpy import save_file

    arrays = dict(extra or {})
    for i, est in enumerate(estimators):
        arrays.update({f"t{i}.{k}": v for k, v in tree_arrays(est.tree_).items()})
    save_file(arrays, str(path))
    return [int(est.tree_.max_depth) for est in estimators]


def load_trees(path: Path, depths: list[int], n_features: int, n_classes: int) -> tuple[list, dict[str, np.ndarray]]:
    """Trees saved by :func:`save_trees`, and the other arrays of the file."""
    from safetensors.numpy import load_file

    arrays = load_file(str(path))
    trees = []
    for i, depth in enumerate(depths):
        prefix = f"t{i}."
        fields = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        trees.append(tree_from_arrays(fields, n_features, n_classes, depth))
    return trees, {k: v for k, v in arrays.items() if not k.startswith("t") or "." not in k}


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

    # ---- persistence (no pickle) -------------------------------------------
    def save_state(self, directory: str | Path) -> dict[str, Any]:
        """Write the trees to ``trees.safetensors``; returns the structure for the manifest."""
        est = self.estimator_
        depths = save_trees(est.estimators_, Path(directory) / "trees.safetensors",
                            {"classes": np.asarray(est.classes_, dtype=np.int64)})
        return {"trees": "trees.safetensors", "depths": depths, "n_features": int(est.n_features_in_),
                "max_features": [int(t.max_features_) for t in est.estimators_]}

    def load_state(self, directory: str | Path, state: dict[str, Any]) -> None:
        from sklearn.base import clone

        est = self._make()
        n_features = int(state["n_features"])
        _, arrays = load_trees(Path(directory) / state["trees"], [], n_features, 1)
        classes = arrays["classes"]
        trees, _ = load_trees(Path(directory) / state["trees"], state["depths"], n_features, len(classes))
        subs = []
        for tree, max_features in zip(trees, state["max_features"]):
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
