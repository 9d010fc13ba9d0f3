"""scripts/make_attack_captures.py: real attack tools between two network namespaces, recorded as captures.

Runs two of the script's attacks (an nmap ping sweep of the routed network and an hping3 SYN flood from
spoofed sources) as root with nmap, hping3, tcpdump and iproute2 (skipped where any is missing), then
meters the captures through the labels file the script writes and checks what host context makes of
them: the flows are the tools' and they are flagged.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowsentinel.collector.peers import tool_missing
from flowsentinel.serving.context import HostContext
from flowsentinel.sources import load_sources

ROOT = Path(__file__).resolve().parents[1]
ATTACKS = ("nmap-icmp-sweep-2", "hping3-syn-flood-2")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    reason = tool_missing("ip", "tcpdump", "nmap", "hping3")
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("attack-captures")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_attack_captures.py"), "--out", str(out),
                           "--only", *ATTACKS], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_the_labels_file_names_each_capture_for_training(recorded):
    with open(recorded / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["capture"] for r in rows] == [f"{name}.pcap" for name in ATTACKS]
    assert {r["use"] for r in rows} == {"train"} and [r["label"] for r in rows] == ["Reconnaissance", "DoS"]
    assert all((recorded / r["capture"]).stat().st_size > 0 for r in rows)
    # Nothing is left behind: the namespaces are gone.
    assert not {"fs-attacker", "fs-victim"} & set(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                                 text=True).stdout.split())


def test_the_recorded_attacks_are_the_tools_and_host_context_flags_them(recorded):
    flows = load_sources([str(recorded / "labels.csv")]).flows
    by_capture = {Path(str(c)).stem: part for c, part in flows.groupby("Capture")}
    sweep, flood = by_capture["nmap-icmp-sweep-2"], by_capture["hping3-syn-flood-2"]
    # nmap's echo requests go to every address of the swept /25 (routed, so dead ones are probed too); the
    # rest of the capture is the interfaces' own IPv6 neighbour discovery.
    sweep = sweep[sweep["IPV4_SRC_ADDR"] == "10.77.0.1"]
    assert (sweep["PROTOCOL"] == 1).all() and sweep["IPV4_DST_ADDR"].nunique() == 128
    # hping3 --rand-source: every SYN has a source of its own.
    assert len(flood) >= 2900 and flood["IPV4_SRC_ADDR"].nunique() >= 2900
    for name, part in (("sweep", sweep), ("flood", flood)):
        assert HostContext().mark(part)[0].mean() >= 0.9, name
    whole = by_capture["nmap-icmp-sweep-2"]
    assert not HostContext().mark(whole)[0][(whole["PROTOCOL"] == 58).to_numpy()].any()  # discovery stays quiet
