"""Stratified sampling of row indices: the one split rule every layer shares.

The detectors hold out validation rows with it inside ``fit``, the
evaluation protocols split datasets with it; it needs numpy and pandas only,
so the lowest layers can use it.

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

__all__ = ["Split", "stratified_split"]

log = logging.getLogger(__name__)


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
