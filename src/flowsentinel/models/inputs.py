"""Model input gathered a batch at a time: single flows, or windows of a host's flows.

numpy only, so that a scoring process that runs the network through ONNX
Runtime needs no deep-learning framework.

>>> src = WindowSource(np.ones((3, 2), np.float32), np.array([[-1, 0], [0, 1], [1, 2]]))
>>> src.take(np.array([0])).tolist()
[[[0.0, 0.0], [1.0, 1.0]]]
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["BatchSource", "ArraySource", "WindowSource"]


class BatchSource(Protocol):
    """Rows of model input, gathered a batch at a time."""

    def __len__(self) -> int: ...

    def take(self, index: np.ndarray) -> np.ndarray: ...


class ArraySource:
    """Per-flow inputs: one row of ``X`` per example."""

    def __init__(self, X: np.ndarray):
        self.X = np.ascontiguousarray(X, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.X)

    def take(self, index: np.ndarray) -> np.ndarray:
        return self.X[index]


class WindowSource:
    """Windowed inputs: ``windows[i]`` lists the rows of ``X`` in example ``i``.

    ``-1`` marks padding, which is a row of zeros (the training mean after
    standardisation). Windows are gathered per batch, never materialised.
    """

    def __init__(self, X: np.ndarray, windows: np.ndarray):
        self.X = np.vstack([np.asarray(X, dtype=np.float32), np.zeros((1, X.shape[1]), np.float32)])
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)

    def take(self, index: np.ndarray) -> np.ndarray:
        return self.X[self.windows[index]]  # -1 picks the zero row
