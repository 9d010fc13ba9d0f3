"""The one threshold policy: a fixed threshold, or one meeting a target false-alarm rate."""

from __future__ import annotations

import numpy as np
import pytest

from flowsentinel.errors import ConfigError
from flowsentinel.models.deep import cnn_bilstm
from flowsentinel.models.thresholds import ThresholdPolicy


def test_threshold_flags_at_most_the_target_share_of_benign_scores():
    scores = np.linspace(0, 1, 101)
    t = ThresholdPolicy(target_far=0.1).fit(scores)
    assert (scores >= t).mean() <= 0.1
    assert (scores >= t).sum() == 10
    assert ThresholdPolicy(threshold=0.7, target_far=0.1).fit(scores) == 0.7  # an explicit threshold wins
    assert ThresholdPolicy().fit(scores) == 0.5


def test_ties_never_push_the_rate_over_the_target():
    scores = np.array([0.9] * 5 + [0.1] * 95)
    t = ThresholdPolicy(target_far=0.02).fit(scores)
    assert (scores >= t).sum() == 0


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"target_far": -0.1}, {"target_far": "x"}])
def test_out_of_range_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        ThresholdPolicy(**bad)


def test_fitted_threshold_meets_target_on_validation_flows(synthetic):
    train, val = synthetic.iloc[:2200], synthetic.iloc[2200:]
    det = cnn_bilstm(task="binary", target_far=0.05, max_epochs=2, verbose=False, num_threads=1)
    det.fit(train, X_val=val)
    benign = val["Attack"].to_numpy() == "Benign"
    flagged = det.decision_function(val)[benign] >= det.threshold_
    assert flagged.mean() <= 0.05
    assert (det.predict(val)[~(det.decision_function(val) >= det.threshold_)] == "Benign").all()
