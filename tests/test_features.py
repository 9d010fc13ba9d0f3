"""The feature pipeline and the windowing ("time-series reconstruction")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flowsentinel.evaluation.splits import make_split
from flowsentinel.features import (
    WRAP_MS,
    FeatureConfig,
    FeaturePipeline,
    MissingColumnsError,
    input_columns,
    make_windows,
)
from flowsentinel.schema import get_schema


def test_identifiers_left_out_unless_ports_asked(synthetic):
    cols = FeaturePipeline().fit(synthetic).input_columns_
    assert not {"IPV4_SRC_ADDR", "IPV4_DST_ADDR", "L4_SRC_PORT", "L4_DST_PORT", "DNS_QUERY_ID"} & set(cols)
    with_ports = FeaturePipeline(FeatureConfig(include_ports=True)).fit(synthetic).input_columns_
    assert {"L4_SRC_PORT", "L4_DST_PORT"} <= set(with_ports)
    assert "IPV4_SRC_ADDR" not in with_ports


def test_flags_decoded_into_bits_and_protocols_one_hot(synthetic):
    pipe = FeaturePipeline().fit(synthetic)
    names = pipe.output_names_
    assert [n for n in names if n.startswith("TCP_FLAGS.")] == [f"TCP_FLAGS.{b}" for b in ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")]
    assert "TCP_FLAGS" not in names
    assert "PROTOCOL=6" in names and "PROTOCOL=other" in names
    row = synthetic.iloc[[0]].copy()
    row["TCP_FLAGS"] = 0b00010010  # SYN + ACK
    row["PROTOCOL"] = 6
    raw = pipe._expand(row)
    assert raw["TCP_FLAGS.SYN"][0] == 1 and raw["TCP_FLAGS.ACK"][0] == 1 and raw["TCP_FLAGS.FIN"][0] == 0
    assert raw["PROTOCOL=6"][0] == 1 and raw["PROTOCOL=other"][0] == 0
    row["PROTOCOL"] = 132  # never seen in training
    assert pipe._expand(row)["PROTOCOL=other"][0] == 1


def test_counters_log_scaled_and_wrapped_durations_unwrapped(synthetic):
    pipe = FeaturePipeline().fit(synthetic)
    row = synthetic.iloc[[0]].copy()
    row["IN_BYTES"] = 1000
    row["FLOW_DURATION_MILLISECONDS"] = 4_293_498  # nProbe wrap-around value
    raw = pipe._expand(row)
    assert raw["IN_BYTES"][0] == pytest.approx(np.log1p(1000))
    assert raw["FLOW_DURATION_MILLISECONDS.wrapped"][0] == 1
    assert raw["FLOW_DURATION_MILLISECONDS"][0] == pytest.approx(np.log1p(WRAP_MS - 4_293_498))


def test_scaling_fitted_on_training_rows_only(synthetic):
    train, test = synthetic.iloc[:1000], synthetic.iloc[1000:].copy()
    pipe = FeaturePipeline().fit(train)
    test["IN_BYTES"] = test["IN_BYTES"] * 1000
    before = pipe.mean_.copy()
    pipe.transform(test)
    np.testing.assert_array_equal(pipe.mean_, before)
    X = pipe.transform(train)
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)


def test_state_is_json_and_round_trips(synthetic):
    pipe = FeaturePipeline().fit(synthetic)
    text = json.dumps(pipe.to_dict())
    again = FeaturePipeline.from_dict(json.loads(text))
    np.testing.assert_array_equal(pipe.transform(synthetic), again.transform(synthetic))


def test_missing_column_named(synthetic):
    pipe = FeaturePipeline().fit(synthetic)
    with pytest.raises(MissingColumnsError, match="TCP_WIN_MAX_IN"):
        pipe.transform(synthetic.drop(columns=["TCP_WIN_MAX_IN"]), where="flows.csv")


def test_icmp_fields_zeroed_on_non_icmp_flows_only_when_asked(synthetic):
    rows = synthetic.iloc[:3].copy()
    rows["PROTOCOL"] = [6, 1, 58]
    rows["ICMP_TYPE"] = [35840, 2048, 32768]  # the NF files' TCP value, echo request, ICMPv6 echo
    rows["ICMP_IPV4_TYPE"] = [140, 8, 0]
    asis = FeaturePipeline().fit(synthetic)._expand(rows)
    assert asis["ICMP_TYPE"].tolist() == [35840, 2048, 32768]
    pipe = FeaturePipeline(FeatureConfig(icmp_fields_icmp_only=True)).fit(synthetic)
    raw = pipe._expand(rows)
    assert raw["ICMP_TYPE"].tolist() == [0, 2048, 32768]
    assert raw["ICMP_IPV4_TYPE"].tolist() == [0, 8, 0]
    again = FeaturePipeline.from_dict(json.loads(json.dumps(pipe.to_dict())))
    np.testing.assert_array_equal(again.transform(rows), pipe.transform(rows))
    with pytest.raises(MissingColumnsError, match="PROTOCOL"):
        FeaturePipeline(FeatureConfig(icmp_fields_icmp_only=True, exclude=("PROTOCOL",))).fit(synthetic).transform(
            rows.drop(columns=["PROTOCOL"]))


def test_icmp_fields_of_the_nf_files_hold_packet_length_bytes_on_tcp_flows(sample_frame):
    """The evidence behind ``icmp_fields_icmp_only``: on TCP flows of the real
    sample, a nonzero ICMP_IPV4_TYPE is mostly LONGEST_FLOW_PKT's low byte."""
    tcp = sample_frame[(sample_frame["PROTOCOL"] == 6) & (sample_frame["ICMP_TYPE"] != 0)]
    if len(tcp) < 20:
        pytest.skip(f"only {len(tcp)} TCP flows with an ICMP_TYPE in this slice of the sample")
    low_byte = (tcp["LONGEST_FLOW_PKT"] % 256 == tcp["ICMP_IPV4_TYPE"]).mean()
    assert low_byte > 0.9
    assert (tcp["ICMP_TYPE"] // 256 == tcp["ICMP_IPV4_TYPE"]).all()


def test_v1_pipeline_on_real_flows(sample_frame):
    v1 = input_columns(get_schema("v1"))
    pipe = FeaturePipeline().fit(sample_frame, get_schema("v1"))
    assert pipe.input_columns_ == v1
    X = pipe.transform(sample_frame)
    assert np.isfinite(X).all() and X.shape[0] == len(sample_frame)


def test_windows_group_by_key_and_follow_time():
    keys = np.array(["a", "b", "a", "a", "b"])
    time = np.array([30, 5, 10, 20, 1])
    w = make_windows(keys, time, 2)
    # host a in time order: rows 2 (t=10), 3 (t=20), 0 (t=30)
    assert w[2].tolist() == [-1, 2]
    assert w[3].tolist() == [2, 3]
    assert w[0].tolist() == [3, 0]
    # host b: rows 4 (t=1), 1 (t=5)
    assert w[1].tolist() == [4, 1]
    # every window ends with its own flow: the label is the last flow's
    assert (w[:, -1] == np.arange(5)).all()


def test_windows_never_cross_the_train_test_boundary(synthetic):
    y = synthetic["Attack"].to_numpy()
    split = make_split(synthetic, y, "paper", input_columns(get_schema("v2")), seed=3)
    seen = {}
    for part in ("train", "val", "test"):
        rows = getattr(split, part)
        sub = synthetic.iloc[rows].reset_index(drop=True)
        w = make_windows(sub["IPV4_SRC_ADDR"].to_numpy(), None, 8)
        members = w[w >= 0]
        # indices point inside this split's own table ...
        assert members.max() < len(sub)
        # ... and map back to original rows of this split only
        seen[part] = set(rows[np.unique(members)].tolist())
        # every member shares the window's key
        keys = sub["IPV4_SRC_ADDR"].to_numpy()
        for i in range(0, len(w), 97):
            assert set(keys[w[i][w[i] >= 0]]) == {keys[i]}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"] and not seen["val"] & seen["test"]
