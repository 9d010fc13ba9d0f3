"""Alert thresholds chosen from a target false-alarm rate."""

from __future__ import annotations

import numpy as np

from flowsentinel.models.deep import CNNBiLSTMDetector


def test_threshold_flags_at_most_the_target_share_of_benign_scores():
    det = CNNBiLSTMDetector(target_far=0.1)
    scores = np.linspace(0, 1, 101)
    benign = np.ones(101, dtype=bool)
    t = det._threshold_from_far(scores, benign)
    assert (scores[benign] >= t).mean() <= 0.1
    assert (scores[benign] >= t).sum() == 10
    det.threshold = 0.7  # an explicit threshold wins
    assert det._threshold_from_far(scores, benign) == 0.7
    assert CNNBiLSTMDetector()._threshold_from_far(scores, benign) == 0.5


def test_fitted_threshold_meets_target_on_validation_flows(synthetic):
    train, val = synthetic.iloc[:2200], synthetic.iloc[2200:]
    det = CNNBiLSTMDetector(task="binary", target_far=0.05, max_epochs=2, verbose=False, num_threads=1)
    det.fit(train, X_val=val)
    benign = val["Attack"].to_numpy() == "Benign"
    flagged = det.decision_function(val)[benign] >= det.threshold_
    assert flagged.mean() <= 0.05
    assert (det.predict(val)[~(det.decision_function(val) >= det.threshold_)] == "Benign").all()
