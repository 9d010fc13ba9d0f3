"""Train/validation/test splits, including the duplicate-aware ``dedup`` protocol.

* ``paper``: a stratified random 70/15/15 split of all rows, as the
  literature does. On NF-BoT-IoT-v2 about 93% of rows repeat another row's
  feature vector, so the same vectors land on both sides of this split.
* ``dedup``: identical feature vectors are collapsed to one row before the
  stratified split, so no test vector was seen in training.

>>> y = np.array(["a"] * 10 + ["b"] * 10)
>>> s = stratified_split(y, (0.7, 0.15, 0.15), seed=0)
>>> [len(s.train), len(s.val), len(s.test)]
[14, 4, 2]
>>> sorted(set(s.train) | set(s.val) | set(s.test)) == list(range(20))
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["Split", "stratified_split", "dedup_index", "make_split", "PROTOCOLS"]

log = logging.getLogger(__name__)

PROTOCOLS = ("paper", "dedup")


@dataclass
class Split:
    """Row indices (into the original table) of each part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str = "paper"
    info: dict = field(default_factory=dict)


def stratified_split(y: np.ndarray, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> Split:
    """Per-class shuffled split; a class with at least 3 rows has one in each part."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    parts: list[list[np.ndarray]] = [[], [], []]
    f_train, f_val, _ = fractions
    for cls in pd.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_train = int(round(n * f_train))
        n_val = int(round(n * f_val))
        if n >= 3:
            n_train = min(max(n_train, 1), n - 2)
            n_val = min(max(n_val, 1), n - n_train - 1)
        else:
            n_train, n_val = n, 0
            log.warning("class %r has only %d row(s): all kept for training, none to test on", cls, n)
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train : n_train + n_val])
        parts[2].append(idx[n_train + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) if p else np.zeros(0, int) for p in parts)
    return Split(train, val, test)


def dedup_index(features: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, dict]:
    """Rows that keep the first occurrence of each distinct feature vector.

    Also reports how many distinct vectors carry more than one label (those
    can never be classified perfectly, whatever the model).
    """
    key = pd.util.hash_pandas_object(features, index=False).to_numpy()
    frame = pd.DataFrame({"key": key, "y": y})
    first = ~frame.duplicated("key", keep="first").to_numpy()
    labels_per_vector = frame.groupby("key")["y"].nunique()
    info = {
        "n_rows": int(len(frame)),
        "n_unique_vectors": int(first.sum()),
        "duplicate_fraction": float(1 - first.sum() / max(len(frame), 1)),
        "vectors_with_conflicting_labels": int((labels_per_vector > 1).sum()),
    }
    return np.flatnonzero(first), info


def make_split(
    flows: pd.DataFrame,
    y: np.ndarray,
    protocol: str,
    feature_columns: list[str],
    seed: int = 0,
    fractions=(0.7, 0.15, 0.15),
) -> Split:
    """Indices into ``flows`` for the chosen protocol."""
    if protocol == "paper":
        split = stratified_split(y, fractions, seed)
        split.protocol = "paper"
        split.info = {"n_rows": int(len(y))}
        return split
    if protocol == "dedup":
        keep, info = dedup_index(flows[feature_columns], y)
        inner = stratified_split(y[keep], fractions, seed)
        split = Split(keep[inner.train], keep[inner.val], keep[inner.test], "dedup", info)
        return split
    raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
