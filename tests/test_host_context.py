"""Host context (flowsentinel.serving.context): scans, sweeps and floods across flows, beside the model.

Flows are generated here (one row per flow, the meter's columns); the
end-to-end tests write a capture with scapy and run ``detect`` on it with the
shipped model; the calibration test runs scripts/calibrate_context.py on the
shared captures (skipped where they are absent).
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowsentinel.cli import main
from flowsentinel.errors import ConfigError
from flowsentinel.io.alerts import CONTEXT_COLUMN, FOLD_BY_DESTINATION
from flowsentinel.serving.context import (
    FLOOD_CLASS,
    REPEAT_CLASS,
    SCAN_CLASS,
    HostContext,
    HostContextConfig,
    crafted_mask,
    peak_counts,
    probe_mask,
)

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000_000


def flows(rows: list[dict]) -> pd.DataFrame:
    base = {"FLOW_START_MILLISECONDS": T0, "IPV4_SRC_ADDR": "10.0.0.5", "L4_SRC_PORT": 40000,
            "IPV4_DST_ADDR": "10.0.0.9", "L4_DST_PORT": 80, "PROTOCOL": 6, "IN_PKTS": 1, "OUT_PKTS": 0,
            "TCP_FLAGS": 2, "CLIENT_TCP_FLAGS": 2, "SERVER_TCP_FLAGS": 0}
    return pd.DataFrame([{**base, **r} for r in rows])


def vertical_scan(n: int, start: int = 0, t0: int = T0) -> pd.DataFrame:
    """SYNs to ``n`` ports of one host, each answered by a reset (closed ports)."""
    return flows([{"L4_DST_PORT": 1000 + start + i, "FLOW_START_MILLISECONDS": t0 + 10 * i, "OUT_PKTS": 1,
                   "SERVER_TCP_FLAGS": 20, "TCP_FLAGS": 22} for i in range(n)])


def browsing(n: int) -> pd.DataFrame:
    """Complete web sessions from one client to many servers: nothing to flag."""
    return flows([{"IPV4_DST_ADDR": f"93.184.{i // 250}.{i % 250 + 1}", "L4_DST_PORT": 443, "IN_PKTS": 12,
                   "OUT_PKTS": 15, "TCP_FLAGS": 27, "CLIENT_TCP_FLAGS": 27, "SERVER_TCP_FLAGS": 27,
                   "L4_SRC_PORT": 50000 + i, "FLOW_START_MILLISECONDS": T0 + 100 * i} for i in range(n)])


def test_probes_are_short_unanswered_or_reset_flows():
    frame = flows([{}, {"OUT_PKTS": 1, "SERVER_TCP_FLAGS": 20}, {"IN_PKTS": 10, "OUT_PKTS": 10},
                   {"PROTOCOL": 17, "OUT_PKTS": 1}, {"PROTOCOL": 1, "L4_DST_PORT": 2048}])
    assert probe_mask(frame).tolist() == [True, True, False, False, True]


def test_a_vertical_scan_is_flagged_whole_and_browsing_is_not():
    frame = pd.concat([browsing(200), vertical_scan(30)], ignore_index=True)
    flagged, classes = HostContext().mark(frame)
    assert not flagged[:200].any()
    assert flagged[200:].all()
    assert set(classes[200:]) == {SCAN_CLASS}


def test_below_the_threshold_nothing_is_flagged():
    flagged, _ = HostContext().mark(vertical_scan(HostContextConfig().vertical - 1))
    assert not flagged.any()


def test_a_ping_sweep_is_a_horizontal_scan():
    sweep = flows([{"PROTOCOL": 1, "L4_DST_PORT": 2048, "IPV4_DST_ADDR": f"10.0.1.{i + 1}", "TCP_FLAGS": 0,
                    "CLIENT_TCP_FLAGS": 0, "FLOW_START_MILLISECONDS": T0 + i} for i in range(20)])
    flagged, classes = HostContext().mark(sweep)
    assert flagged.all() and set(classes) == {SCAN_CLASS}


def test_a_spoofed_flood_is_fan_in_and_a_single_source_flood_is_repeat():
    spoofed = flows([{"IPV4_SRC_ADDR": f"198.51.{i // 200}.{i % 200 + 1}", "L4_SRC_PORT": 1024 + i}
                     for i in range(50)])
    flagged, classes = HostContext().mark(spoofed)
    assert flagged.all() and set(classes) == {FLOOD_CLASS}
    single = flows([{"L4_SRC_PORT": 1024 + i, "FLOW_START_MILLISECONDS": T0 + i} for i in range(50)])
    flagged, classes = HostContext().mark(single)
    assert flagged.all() and set(classes) == {REPEAT_CLASS}


def spoofed_syns(n: int) -> pd.DataFrame:
    """Unanswered SYNs, each with its own source, destination and ports."""
    return flows([{"IPV4_SRC_ADDR": f"198.51.{i // 200}.{i % 200 + 1}", "IPV4_DST_ADDR": f"203.0.{i // 200}.{i % 200 + 1}",
                   "L4_SRC_PORT": 1024 + i, "L4_DST_PORT": 2000 + 7 * i, "FLOW_START_MILLISECONDS": T0 + i}
                  for i in range(n)])


def test_a_flood_of_spoofed_sources_and_destinations_is_a_half_open_burst():
    cfg = HostContextConfig()
    flagged, classes, reasons, _ = HostContext().verdicts(spoofed_syns(cfg.half_open))
    assert flagged.all() and set(classes) == {REPEAT_CLASS}
    assert reasons[0].startswith(f"half-open burst: {cfg.half_open} sources")
    assert not HostContext().mark(spoofed_syns(cfg.half_open - 1))[0].any()
    # One client's many unanswered SYNs (a peer-to-peer client) are one source, not a burst.
    one = spoofed_syns(3 * cfg.half_open).assign(IPV4_SRC_ADDR="10.0.0.5")
    assert not HostContext().mark(one)[0].any()


def test_crafted_flags_flag_every_flow_between_the_prober_and_its_target():
    probing = flows([
        {"TCP_FLAGS": 0, "CLIENT_TCP_FLAGS": 0, "IN_PKTS": 4, "L4_DST_PORT": 22},  # NULL probe, resent
        {"TCP_FLAGS": 41, "CLIENT_TCP_FLAGS": 41, "L4_DST_PORT": 1},  # FIN|PSH|URG: the Xmas probe
        {"OUT_PKTS": 1, "TCP_FLAGS": 18, "SERVER_TCP_FLAGS": 18, "L4_DST_PORT": 22},  # SYN to an open port
        {"PROTOCOL": 1, "L4_DST_PORT": 0, "ICMP_TYPE": 2048, "TCP_FLAGS": 0, "CLIENT_TCP_FLAGS": 0,
         "IN_PKTS": 2, "OUT_PKTS": 2},  # echo requests, answered
        {"IPV4_SRC_ADDR": "10.0.0.9", "IPV4_DST_ADDR": "10.0.0.5", "L4_SRC_PORT": 22, "L4_DST_PORT": 40000,
         "TCP_FLAGS": 18, "CLIENT_TCP_FLAGS": 18, "FLOW_START_MILLISECONDS": T0 + 900},  # a split-off answer
        {"IPV4_DST_ADDR": "10.0.0.77", "IN_PKTS": 12, "OUT_PKTS": 12, "TCP_FLAGS": 27, "CLIENT_TCP_FLAGS": 27},
    ])
    flagged, classes, reasons, _ = HostContext().verdicts(probing)
    assert flagged.tolist() == [True] * 5 + [False]
    assert set(classes[:5]) == {SCAN_CLASS} and reasons[0].startswith("crafted flags: 2 probes")
    assert not HostContext().mark(probing.iloc[[0, 2, 3, 4, 5]])[0].any()  # one crafted probe is not enough
    assert crafted_mask(flows([{"TCP_FLAGS": 3, "CLIENT_TCP_FLAGS": 3}, {"TCP_FLAGS": 6, "CLIENT_TCP_FLAGS": 6},
                               {"TCP_FLAGS": 17, "CLIENT_TCP_FLAGS": 17}, {"TCP_FLAGS": 2}])).tolist() == \
        [True, True, False, False]


def test_answered_echo_requests_count_towards_a_sweep_only():
    sweep = flows([{"PROTOCOL": 1, "L4_DST_PORT": 0, "ICMP_TYPE": 2048, "IPV4_DST_ADDR": f"10.0.1.{i + 1}",
                    "TCP_FLAGS": 0, "CLIENT_TCP_FLAGS": 0, "OUT_PKTS": 1, "FLOW_START_MILLISECONDS": T0 + i}
                   for i in range(HostContextConfig().horizontal_icmp)])
    flagged, classes = HostContext().mark(sweep)
    assert flagged.all() and set(classes) == {SCAN_CLASS}
    # Many devices pinging their gateway, answered: no fan-in.
    gateway = sweep.assign(IPV4_DST_ADDR="10.0.1.1", IPV4_SRC_ADDR=[f"10.0.2.{i + 1}" for i in range(len(sweep))])
    assert not HostContext().mark(gateway)[0].any()


def test_multicast_and_broadcast_destinations_are_not_counted():
    discovery = flows([{"IPV4_SRC_ADDR": f"192.168.1.{i + 2}", "IPV4_DST_ADDR": dst, "PROTOCOL": 17,
                        "L4_DST_PORT": 1900} for i in range(40) for dst in ("239.255.255.250", "192.168.1.255")])
    assert not HostContext().mark(discovery)[0].any()


def test_flows_without_times_or_addresses_get_no_context():
    scan = vertical_scan(40)
    assert not HostContext().mark(scan.drop(columns=["FLOW_START_MILLISECONDS"]))[0].any()
    assert not HostContext().mark(scan.drop(columns=["IPV4_SRC_ADDR", "IPV4_DST_ADDR"]))[0].any()
    untimed = scan.astype({"FLOW_START_MILLISECONDS": float})
    untimed["FLOW_START_MILLISECONDS"] = np.nan
    assert not HostContext().mark(untimed)[0].any()


def test_counts_carry_across_chunks_and_windows_end():
    context = HostContext()
    first = vertical_scan(8)
    assert not context.mark(first)[0].any()
    second = vertical_scan(8, start=8, t0=T0 + 200)
    assert context.mark(second)[0].all()  # 16 services in the window: crossed in this chunk
    later = vertical_scan(8, start=100, t0=T0 + 10 * 60_000)  # ten windows on: the old probes are gone
    assert not context.mark(later)[0].any()


def test_the_stored_probes_are_bounded():
    context = HostContext(HostContextConfig(max_probes=100))
    for k in range(5):
        context.mark(vertical_scan(60, start=60 * k))
    assert len(context._state) <= 100


def test_apply_keeps_the_models_alerts_and_class_and_says_why():
    frame = vertical_scan(30)
    model_alerts = np.zeros(30, bool)
    model_alerts[0] = True
    model_classes = np.array(["DoS"] + ["Benign"] * 29, dtype=object)
    context = HostContext()
    classes, alerts, notes = context.apply(frame, model_classes, model_alerts)
    assert alerts.all()
    assert classes[0] == "DoS" and set(classes[1:]) == {SCAN_CLASS}
    assert context.n_added == 29
    assert notes[CONTEXT_COLUMN][1].startswith("vertical scan: 30 services")
    assert not notes[FOLD_BY_DESTINATION].any()  # a scan folds by its source


def test_peak_counts_are_what_the_thresholds_compare_with():
    peaks = peak_counts(pd.concat([browsing(50), vertical_scan(30), spoofed_syns(25)], ignore_index=True))
    assert peaks["vertical"] == 30 and peaks["fan_in"] == 1 and peaks["horizontal_tcp"] == 1
    assert peaks["half_open"] == 25 and peaks["crafted"] == 0


@pytest.mark.parametrize("values, message", [
    ({"vertical": 1}, "vertical must be a whole number >= 2"),
    ({"fan_in": 2.5}, "fan_in must be a whole number"),
    ({"window_s": 0}, r"window_s must be a number in \(0, inf\)"),
])
def test_bad_settings_are_refused_by_name(values, message):
    with pytest.raises(ConfigError, match=message):
        HostContextConfig(**values)


def _scan_capture(path: Path, ports: int = 40) -> Path:
    scapy = pytest.importorskip("scapy.all")
    packets = []
    for i, port in enumerate(range(20, 20 + ports)):  # a SYN to each port, unanswered: a port scan
        p = scapy.Ether() / scapy.IP(src="10.0.0.5", dst="10.0.0.9") / scapy.TCP(sport=40000 + i, dport=port, flags="S")
        p.time = 1_700_000_000 + i * 0.01
        packets.append(p)
    scapy.wrpcap(str(path), packets)
    return path


def test_detect_flags_a_generated_scan_through_host_context_and_says_why(tmp_path, capsys):
    pytest.importorskip("nfstream")
    capture = _scan_capture(tmp_path / "scan.pcap")
    out = tmp_path / "eve.json"
    summary = tmp_path / "summary.json"
    assert main(["-q", "detect", str(capture), "-o", str(out), "--no-suppress", "--alerts-only",
                 "--summary", str(summary), "--no-progress"]) == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(alerts) == 40
    reasons = {a["flowsentinel"].get("host_context", "") for a in alerts}
    done = json.loads(summary.read_text())
    assert done["n_alerts"] == 40
    # The shipped model alone lets these lone SYNs pass (a probe on its own looks like a lost connection).
    assert done["n_host_context"] > 0
    assert any(r.startswith("vertical scan: 40 services") for r in reasons)
    assert "from host context" in capsys.readouterr().err

    off = tmp_path / "off.json"
    assert main(["-q", "detect", str(capture), "-o", str(off), "--no-suppress", "--alerts-only",
                 "--no-host-context", "--summary", str(summary), "--no-progress"]) == 0
    done_off = json.loads(summary.read_text())
    assert done_off["n_host_context"] == 0
    assert done_off["n_alerts"] == 40 - done["n_host_context"]
    assert all("host_context" not in json.loads(line)["flowsentinel"] for line in off.read_text().splitlines())


def test_the_default_thresholds_are_the_calibrated_ones(pcaps, monkeypatch, capsys):
    """scripts/calibrate_context.py on the shipped model's split gives HostContextConfig's defaults."""
    pytest.importorskip("nfstream")
    monkeypatch.setattr(sys, "argv", ["calibrate_context.py", "--model-dir",
                                      str(ROOT / "src" / "flowsentinel" / "data" / "models" / "default")])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "scripts" / "calibrate_context.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert done.value.code == 0, printed
    assert "The defaults equal these thresholds." in printed


def test_a_spoofed_flood_is_one_alert_and_one_follow_up_folded_by_its_victim(tmp_path):
    """Suppression folds a fan-in flood by destination: not one window per spoofed source."""
    pytest.importorskip("nfstream")
    scapy = pytest.importorskip("scapy.all")
    packets = []
    for i in range(60):
        p = (scapy.Ether() / scapy.IP(src=f"198.51.{i // 200}.{i % 200 + 1}", dst="10.0.0.9") /
             scapy.TCP(sport=1024 + i, dport=80, flags="S"))
        p.time = 1_700_000_000 + i * 0.001
        packets.append(p)
    capture = tmp_path / "flood.pcap"
    scapy.wrpcap(str(capture), packets)
    out = tmp_path / "eve.json"
    assert main(["-q", "detect", str(capture), "-o", str(out), "--alerts-only", "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    firsts = [r for r in records if "aggregate" not in r["flowsentinel"]]
    follow = [r for r in records if "aggregate" in r["flowsentinel"]]
    # Every probe is an alert: one goes out, the rest fold into one follow-up per class and victim.
    assert sum(r["flowsentinel"]["aggregate"]["count"] for r in follow) + len(firsts) == 60
    assert len(records) <= 4
    flood = [r for r in follow if r["flowsentinel"]["class"] == FLOOD_CLASS]
    assert flood, records
    agg = flood[0]["flowsentinel"]["aggregate"]
    assert agg["by"] == "destination" and agg["destinations"] == ["10.0.0.9"]
    assert agg["n_sources"] == agg["count"] and "src_ip" not in flood[0]
    assert flood[0]["dest_ip"] == "10.0.0.9"
