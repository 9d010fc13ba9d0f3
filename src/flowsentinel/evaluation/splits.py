"""Train/validation/test splits, including the duplicate-aware ``dedup`` protocol.

* ``paper``: a stratified random 70/15/15 split of all rows, as the
  literature does. On NF-BoT-IoT-v2 about 93% of rows repeat another row's
  feature vector, so the same vectors land on both sides of this split.
* ``dedup``: identical feature vectors are collapsed to one row before the
  stratified split, so no test vector was seen in training.

The stratified rule itself is :func:`flowsentinel.sampling.stratified_split`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..sampling import Split, stratified_split

__all__ = ["Split", "stratified_split", "dedup_index", "make_split", "PROTOCOLS"]

log = logging.getLogger(__name__)

PROTOCOLS = ("paper", "dedup")


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
