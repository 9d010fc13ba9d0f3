"""Live metering on the loopback interface of a network namespace the test creates.

The traffic is bounded (20 UDP datagrams to one port, then a 12-datagram
trickle, all to 127.0.0.1 inside the namespace) and the namespace is deleted
afterwards. Needs root and ``ip netns``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live

# Runs inside the namespace: meter `lo` while sending bounded traffic to 127.0.0.1.
_CHILD = r"""
import json, logging, socket, sys, threading, time
from flowsentinel.metering import MeterConfig, meter_interface

def traffic():
    time.sleep(1.0)  # let the capture start
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(20):
        tx.sendto(b"x" * 100, ("127.0.0.1", 40999))
        time.sleep(0.01)
    # nfstream expires idle flows as packets arrive: a bounded trickle of
    # one-datagram flows moves its clock past the first flow's idle timeout.
    for i in range(12):
        time.sleep(0.25)
        tx.sendto(b"t", ("127.0.0.1", 41000 + i))
    tx.close()

threading.Thread(target=traffic, daemon=True).start()
run = meter_interface("lo", MeterConfig(idle_timeout=1, active_timeout=60), max_seconds=float(sys.argv[1]))
df = run.to_pandas()
print(json.dumps({"stats": run.stats.as_dict(), "flows": df.to_dict("records")}, default=str))
"""


def _netns_available() -> str | None:
    if os.geteuid() != 0:
        return "live metering test needs root (network namespace and raw capture)"
    if shutil.which("ip") is None:
        return "live metering test needs iproute2's `ip` command"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return f"`ip netns` unavailable: {probe.stderr.strip()}"
    return None


@pytest.fixture
def netns():
    reason = _netns_available()
    if reason:
        pytest.skip(reason)
    name = f"fs-meter-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, timeout=10)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)


def test_live_loopback_in_namespace(netns):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _CHILD, "5"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    flows, stats = result["flows"], result["stats"]
    udp = [f for f in flows if f["PROTOCOL"] == 17 and f["L4_DST_PORT"] == 40999]
    assert len(udp) == 1
    assert udp[0]["IN_PKTS"] == 20 and udp[0]["IN_BYTES"] == 20 * 128  # 20 + 8 + 100 bytes each
    assert udp[0]["DURATION_IN"] < 1000 and udp[0]["MIN_TTL"] == udp[0]["MAX_TTL"] == 64
    assert stats["packets_seen"] >= stats["packets_metered"] >= 20
    assert stats["packets_dropped"] == 0
    assert 4.5 <= stats["elapsed_s"] < 30  # stopped by max_seconds=5


def test_namespace_is_cleaned_up(netns):
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    assert netns in listed  # the fixture's own namespace exists while the test runs...
    # ...and the fixture deletes it; leftovers from earlier runs would show as fs-meter-*
