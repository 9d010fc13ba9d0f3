"""The one alert-threshold policy that every detector family follows.

A flow is an alert when its anomaly score reaches the threshold. The
threshold is either

* **fixed** (``threshold``), or
* set for a **target false-alarm rate** (``target_far``): the lowest value
  that at most that share of the benign validation flows reaches, or
* 0.5 (:data:`DEFAULT_THRESHOLD`) when neither is given.

Every detector declares ``threshold`` and ``target_far`` and applies this
policy in ``fit``, so a comparison of detectors at the same settings is a
comparison at the same operating point.

>>> policy = ThresholdPolicy(target_far=0.25)
>>> policy.fit(np.array([0.1, 0.2, 0.3, 0.9]))  # one of four benign scores may reach it
0.30000000000000004
>>> ThresholdPolicy(threshold=0.7).fit(np.array([0.1, 0.9]))
0.7
>>> ThresholdPolicy().fit(np.array([]))
0.5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .params import optional_number_in

__all__ = ["DEFAULT_THRESHOLD", "ThresholdPolicy"]

#: The threshold when neither a fixed one nor a target false-alarm rate is given.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ThresholdPolicy:
    """How a detector's alert threshold is set (see the module docstring).

    Attributes:
        threshold: a fixed threshold on the score (wins over ``target_far``).
        target_far: share of benign validation flows that may be flagged.
    """

    threshold: float | None = None
    target_far: float | None = None

    def __post_init__(self):
        optional_number_in("threshold", self.threshold, 0.0, 1.0)
        optional_number_in("target_far", self.target_far, 0.0, 1.0)

    @property
    def needs_validation(self) -> bool:
        """True when the threshold comes from benign validation scores."""
        return self.threshold is None and self.target_far is not None

    def fit(self, benign_scores: np.ndarray) -> float:
        """The threshold, given the scores of the benign validation flows.

        With a target false-alarm rate it sits just above the benign score
        that only ``target_far`` of the benign flows exceed, so that share
        at most is flagged.
        """
        if self.threshold is not None:
            return float(self.threshold)
        ordered = np.sort(np.asarray(benign_scores, dtype="float64"))[::-1]
        if self.target_far is None or len(ordered) == 0:
            return DEFAULT_THRESHOLD
        allowed = int(np.floor(self.target_far * len(ordered)))
        if allowed >= len(ordered):
            return float(ordered[-1])
        return float(np.nextafter(ordered[allowed], np.inf))
