"""Explanations: integrated gradients add up to the score difference; only alerts are explained."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from flowsentinel.alerting.suppress import SuppressConfig
from flowsentinel.errors import ConfigError
from flowsentinel.explain import ExplainConfig, explain_flows
from flowsentinel.io.alerts import AlertWriter
from flowsentinel.models.deep import cnn_bilstm


@pytest.fixture(scope="module", params=[0, 8], ids=["plain", "binned"])
def detector(request, sample_frame):
    det = cnn_bilstm(max_epochs=2, input_bins=request.param, verbose=False, num_threads=1)
    return det.fit(sample_frame.head(4000))


def test_attributions_add_up_to_the_score_difference(detector, sample_frame):
    flows = sample_frame.iloc[4000:4200]
    ex = explain_flows(detector, flows, np.arange(len(flows)))
    assert ex.scores == pytest.approx(detector.decision_function(flows), abs=1e-5)
    total = ex.input_contributions.sum(axis=1)
    assert total == pytest.approx(ex.scores - ex.baseline_score, abs=2e-3)
    # Folding onto flow columns moves shares between inputs, never changes their sum.
    assert ex.contributions.sum(axis=1) == pytest.approx(total, abs=1e-9)
    # More integration points, a smaller gap: the sum converges to the score difference.
    few = explain_flows(detector, flows.head(50), np.arange(50), ExplainConfig(steps=4))
    many = explain_flows(detector, flows.head(50), np.arange(50), ExplainConfig(steps=128))
    gap_few = np.abs(few.input_contributions.sum(axis=1) - (few.scores - few.baseline_score))
    gap_many = np.abs(many.input_contributions.sum(axis=1) - (many.scores - many.baseline_score))
    assert gap_many.mean() < gap_few.mean()


@pytest.mark.parametrize("baseline", ["mean", "reference"])
def test_other_baselines_keep_completeness(detector, sample_frame, baseline):
    flows = sample_frame.iloc[4000:4100]
    benign = sample_frame[sample_frame["Attack"] == "Benign"]
    reference = benign if baseline == "reference" else None
    config = ExplainConfig(baseline="mean")
    ex = explain_flows(detector, flows, np.arange(len(flows)), config, reference=reference)
    empty = explain_flows(detector, flows.head(1), np.arange(1))
    assert ex.baseline_score != pytest.approx(empty.baseline_score)
    assert ex.input_contributions.sum(axis=1) == pytest.approx(ex.scores - ex.baseline_score, abs=2e-3)
    with pytest.raises(ConfigError, match="baseline"):
        ExplainConfig(baseline="blur")


def test_inputs_fold_onto_their_flow_columns(detector, sample_frame):
    flows = sample_frame.iloc[4000:4050]
    ex = explain_flows(detector, flows, np.arange(10, 20))
    features = detector.features_
    assert ex.columns == list(features.input_columns_)
    names = features.output_names_
    for col in ("PROTOCOL", "TCP_FLAGS", "FLOW_DURATION_MILLISECONDS"):
        owned = [i for i, n in enumerate(names) if n == col or n.startswith(col + "=") or n.startswith(col + ".")]
        assert len(owned) > 1  # one-hot slots, flag bits, a wrap flag
        j = ex.columns.index(col)
        assert ex.contributions[:, j] == pytest.approx(ex.input_contributions[:, owned].sum(axis=1))
        assert ex.values[:, j].tolist() == flows.iloc[10:20][col].tolist()
    top = ex.top(0, 3)
    assert len(top) == 3
    assert abs(top[0]["contribution"]) >= abs(top[1]["contribution"]) >= abs(top[2]["contribution"])
    json.dumps(top)


def test_only_alerts_that_are_written_pay(detector, sample_frame):
    flows = sample_frame.iloc[4000:4300]
    scores = detector.decision_function(flows)
    alerts = scores >= np.quantile(scores, 0.7)
    calls = []

    def explainer(frame, rows):
        calls.append(np.asarray(rows).copy())
        return explain_flows(detector, frame, rows)

    out = io.StringIO()
    w = AlertWriter(out, "jsonl", explainer=explainer, suppress=SuppressConfig(enabled=False))
    w.write(flows, scores, np.where(alerts, "DoS", "Benign").astype(object), alerts, np.arange(len(flows)))
    w.finish()
    assert len(calls) == 1 and calls[0].tolist() == np.flatnonzero(alerts).tolist()
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    for r in recs:
        assert ("explanation" in r["flowsentinel"]) == (r["event_type"] == "alert")
    csv_out = io.StringIO()
    w = AlertWriter(csv_out, "csv", explainer=explainer)
    w.write(flows, scores, np.where(alerts, "DoS", "Benign").astype(object), alerts, np.arange(len(flows)))
    rows = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    assert [bool(r["explanation"]) for r in rows] == alerts.tolist()
    assert all(len(r["explanation"].split(";")) == 5 for r in rows if r["explanation"])
    # Suppressed repeats are not explained either; a frame without alerts never calls the explainer.
    calls.clear()
    w = AlertWriter(io.StringIO(), "jsonl", explainer=explainer, suppress=SuppressConfig(window_s=3600))
    w.write(flows, scores, np.where(alerts, "DoS", "Benign").astype(object), alerts, np.arange(len(flows)))
    assert len(calls[0]) == flows[alerts]["IPV4_SRC_ADDR"].nunique()
    calls.clear()
    w.write(flows, np.zeros(len(flows)), np.full(len(flows), "Benign", dtype=object), np.zeros(len(flows), bool),
            np.arange(len(flows)))
    assert calls == []


def test_models_that_cannot_be_explained(sample_frame):
    window = cnn_bilstm(mode="window", window=4, max_epochs=1, verbose=False).fit(sample_frame.head(800))
    with pytest.raises(ConfigError, match="per-flow"):
        explain_flows(window, sample_frame.head(5), np.arange(5))
    attacks_only = sample_frame[sample_frame["Attack"] != "Benign"].head(800)
    no_benign = cnn_bilstm(max_epochs=1, verbose=False).fit(attacks_only)
    with pytest.raises(ConfigError, match="Benign"):
        explain_flows(no_benign, attacks_only.head(5), np.arange(5))
