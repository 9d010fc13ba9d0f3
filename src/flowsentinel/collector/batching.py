"""Micro-batches: score when a batch holds ``size`` records or its first record has waited ``wait_s``.

>>> b = MicroBatcher(size=100, wait_s=0.25)
>>> b.add(40, now=10.0); b.due(10.1), b.deadline()
(False, 10.25)
>>> b.due(10.25)
True
>>> b.add(70, now=10.2); b.due(10.2)
True
>>> b.reset(); b.deadline() is None
True
"""

from __future__ import annotations

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Counts the records of the batch being filled and says when it is due, whichever comes first."""

    def __init__(self, size: int, wait_s: float):
        self.size = size
        self.wait_s = wait_s
        self._n = 0
        self._first: float | None = None

    def add(self, n: int, now: float) -> None:
        if n and self._first is None:
            self._first = now
        self._n += n

    def deadline(self) -> float | None:
        """When the batch being filled is due by time (monotonic s), or ``None`` if it is empty."""
        return None if self._first is None else self._first + self.wait_s

    def due(self, now: float) -> bool:
        return self._n >= self.size or (self._first is not None and now >= self._first + self.wait_s)

    def reset(self) -> None:
        self._n = 0
        self._first = None
