"""No alert storms: repeats fold into one follow-up per window, on synthetic timings and on the shared port scan."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from flowsentinel.alerting.suppress import SuppressConfig, Suppressor
from flowsentinel.errors import ConfigError
from flowsentinel.io.alerts import FOLD_BY_DESTINATION, AlertWriter
from tests.test_alerts import check_filebeat

T0 = 1.7e12  # flow times are epoch milliseconds; 0 means "no time"


def frame_of(times_ms, sources, dests, ports):
    times_ms = T0 + np.asarray(times_ms, dtype=float)
    return pd.DataFrame({"IPV4_SRC_ADDR": sources, "L4_SRC_PORT": 40000, "IPV4_DST_ADDR": dests,
                         "L4_DST_PORT": ports, "PROTOCOL": 6, "IN_PKTS": 1, "OUT_PKTS": 1, "IN_BYTES": 44,
                         "OUT_BYTES": 40, "FLOW_START_MILLISECONDS": times_ms, "FLOW_END_MILLISECONDS": times_ms})


def run(frames, classes, config=SuppressConfig(window_s=10), fmt="jsonl", only_alerts=False):
    out = io.StringIO()
    w = AlertWriter(out, fmt, model_name="m", model_version="v", suppress=config, only_alerts=only_alerts)
    offset = 0
    for frame, cls in zip(frames, classes):
        n = len(frame)
        w.write(frame, np.full(n, 0.9), np.asarray(cls, dtype=object), np.ones(n, bool), np.arange(n) + offset)
        offset += n
    w.finish()
    return [json.loads(line) for line in out.getvalue().splitlines()], w


def test_window_folds_repeats_and_reopens_after_it():
    t = np.array([0, 1000, 2000, 3000, 12_000, 13_000], dtype=float)
    frame = frame_of(t, ["10.0.0.1"] * 6, ["10.0.0.9", "10.0.0.9", "10.0.0.8", "10.0.0.9", "10.0.0.9", "10.0.0.9"],
                     [1, 2, 3, 3, 5, 6])
    recs, w = run([frame], [["Scan"] * 6])
    alerts = [r for r in recs if r["event_type"] == "alert"]
    # A frame's own records come first, then the follow-ups of the windows it closed.
    first, again = [r for r in alerts if "aggregate" not in r["flowsentinel"]]
    followup, followup2 = [r for r in alerts if "aggregate" in r["flowsentinel"]]
    assert "aggregate" not in first["flowsentinel"] and first["dest_port"] == 1
    agg = followup["flowsentinel"]["aggregate"]
    assert (agg["count"], agg["dest_ports"], agg["destinations"]) == (3, [2, 3], ["10.0.0.8", "10.0.0.9"])
    assert pd.Timestamp(agg["first"]) == pd.Timestamp(T0 + 1000, unit="ms", tz="UTC")
    assert pd.Timestamp(agg["last"]) == pd.Timestamp(T0 + 3000, unit="ms", tz="UTC")
    assert agg["first_alert_flow_id"] == first["flow_id"]
    assert again["dest_port"] == 5  # the window had closed: the next alert goes out at once
    assert followup2["flowsentinel"]["aggregate"]["count"] == 1
    # Suppressed alerts stay in the stream as flow records that say so.
    folded = [r for r in recs if r["flowsentinel"].get("suppressed")]
    assert len(folded) == 4 and all(r["event_type"] == "flow" and r["flowsentinel"]["alert"] for r in folded)
    assert w.n_suppressed == 4 and w.n_followups == 2
    assert not {p for r in alerts for p in check_filebeat(r)}


def test_keys_and_frames():
    t = np.arange(6, dtype=float) * 100
    frame = frame_of(t, ["a", "a", "b", "a", "b", "a"], "h", [1, 2, 3, 4, 5, 6])
    classes = ["DoS", "Scan", "DoS", "DoS", "DoS", "Scan"]
    by_class, _ = run([frame.iloc[:3], frame.iloc[3:]], [classes[:3], classes[3:]], fmt="ecs", only_alerts=True)
    counts = sorted((r["source"]["ip"], r["flowsentinel"]["class"], r["flowsentinel"].get("aggregate", {}).get("count", 0))
                    for r in by_class)
    assert counts == [("a", "DoS", 0), ("a", "DoS", 1), ("a", "Scan", 0), ("a", "Scan", 1), ("b", "DoS", 0), ("b", "DoS", 1)]
    assert all(r["event"]["kind"] == "alert" for r in by_class)
    by_source, _ = run([frame], [classes], SuppressConfig(window_s=10, key="source"), only_alerts=True)
    assert [r["flowsentinel"]["aggregate"]["count"] for r in by_source if "aggregate" in r["flowsentinel"]] == [3, 1]
    off, _ = run([frame], [classes], SuppressConfig(enabled=False), only_alerts=True)
    assert len(off) == 6


def test_distinct_values_are_bounded():
    s = Suppressor(SuppressConfig(window_s=100, max_distinct=3))
    n = 10
    s.admit(np.zeros(n), np.array(["a"] * n, dtype=object), np.array(["C"] * n, dtype=object),
            np.array([f"h{i}" for i in range(n)], dtype=object), np.arange(n))
    s.finish()
    (agg,) = s.take_closed()
    assert agg.count == n - 1 and agg.truncated and len(agg.destinations) == 3


def test_alerts_marked_by_destination_fold_by_victim_and_count_their_sources():
    n = 6
    frame = frame_of(np.arange(n) * 100.0, [f"198.51.100.{i}" for i in range(n)], "10.0.0.9", 80)
    frame[FOLD_BY_DESTINATION] = [True] * 5 + [False]
    recs, w = run([frame], [["DDoS"] * n], SuppressConfig(window_s=10, max_distinct=3), only_alerts=True)
    firsts = [r for r in recs if "aggregate" not in r["flowsentinel"]]
    (follow,) = [r for r in recs if "aggregate" in r["flowsentinel"]]
    # One window for the victim (its first alert out, four folded) and one for the unmarked alert's source.
    assert [r["src_ip"] for r in firsts] == ["198.51.100.0", "198.51.100.5"]
    agg = follow["flowsentinel"]["aggregate"]
    assert (agg["by"], agg["count"], agg["destinations"]) == ("destination", 4, ["10.0.0.9"])
    assert agg["n_sources"] == 3 and agg["truncated"]  # four sources, listed up to max_distinct
    assert follow["dest_ip"] == "10.0.0.9" and "src_ip" not in follow
    assert not check_filebeat(follow)


@pytest.mark.parametrize("bad", [{"window_s": 0}, {"key": "port"}, {"max_distinct": 0}])
def test_bad_settings(bad):
    with pytest.raises(ConfigError):
        SuppressConfig(**bad)


def test_port_scan_capture_gives_one_alert_and_one_followup(portscan_flows):
    """ppa1e_portscan.pcap (use = check): every probe flagged, as a model that detects the scan would."""
    flows = portscan_flows
    src = flows["IPV4_SRC_ADDR"].mode()[0]
    scan = flows[flows["IPV4_SRC_ADDR"] == src]
    assert len(scan) > 10
    recs, w = run([flows], [np.where(flows["IPV4_SRC_ADDR"] == src, "Reconnaissance", "Benign")],
                  SuppressConfig(window_s=60), only_alerts=False)
    from_scanner = [r for r in recs if r["event_type"] == "alert" and r.get("src_ip") == src]
    assert len(from_scanner) == 2
    first, followup = from_scanner
    agg = followup["flowsentinel"]["aggregate"]
    assert first["flow_id"] == agg["first_alert_flow_id"]
    assert agg["count"] == len(scan) - 1
    rest = scan.drop(index=scan.index[0])
    assert agg["n_dest_ports"] == rest["L4_DST_PORT"].nunique()
    assert agg["dest_ports"] == sorted(rest["L4_DST_PORT"].astype(int).unique().tolist())
    assert agg["destinations"] == sorted(rest["IPV4_DST_ADDR"].unique().tolist())
    assert pd.Timestamp(agg["last"]) == pd.Timestamp(int(rest["FLOW_END_MILLISECONDS"].max()), unit="ms", tz="UTC")
    assert len(recs) == len(flows) + 1  # every flow once, plus the follow-up
