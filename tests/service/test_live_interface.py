"""``serve --interface``: the live meter's flows reach the same scorer (in a network namespace the test makes).

The traffic is bounded (UDP datagrams to 127.0.0.1 inside the namespace) and
the namespace is deleted afterwards. Needs root and ``ip netns``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")

from flowsentinel.service.process import ServiceProcess, free_port  # noqa: E402
from tests.metering.test_live import netns  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.live

_TRAFFIC = r"""
import socket, time
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# One 20-datagram flow, then a bounded trickle of one-datagram flows, which
# moves nfstream's clock past the first flow's idle timeout.
for i in range(32):
    tx.sendto(b"x" * 100 if i < 20 else b"t", ("127.0.0.1", 40999 if i < 20 else 41000 + i))
    time.sleep(0.01 if i < 20 else 0.25)
"""

_FLOWS = r"""
import re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read().decode()
match = re.search(r'flowsentinel_flows_scored_total\{source="interface"\} (\S+)', text)
print(float(match.group(1)) if match else 0.0)
"""


def _in_ns(ns: str, code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=60)


def test_interface_flows_are_scored_and_sigterm_stops_the_meter(netns, model_a, tmp_path):  # noqa: F811
    port = free_port()
    svc = ServiceProcess(["--model-dir", str(model_a), "--interface", "lo", "--flow-idle-timeout", "1",
                          "--alerts", str(tmp_path / "alerts.jsonl"), "--port", str(port)],
                         log_path=tmp_path / "serve.log", prefix=["ip", "netns", "exec", netns])
    svc.start()
    try:
        scored = 0.0
        for _ in range(10):  # at most ten bounded bursts of traffic
            time.sleep(1.0)
            assert _in_ns(netns, _TRAFFIC).returncode == 0
            answer = _in_ns(netns, _FLOWS, svc.url)
            scored = float(answer.stdout.strip() or 0)
            if scored > 0:
                break
        assert scored > 0, svc.log()[-2000:]
    finally:
        code = svc.stop(60)  # one SIGTERM, then the drain: a second one while draining would cut it short
    assert code == 0, svc.log()[-2000:]
    assert "flows submitted" in svc.log()
