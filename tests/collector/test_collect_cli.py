"""``flowsentinel collect`` end to end: softflowd replays shared captures into it over loopback.

The collector runs as the command a user starts; softflowd's exports of the
captures are recorded first (so that every datagram is known), then sent to
it. Each verdict is traced back to its capture by its flow's addresses,
ports and start time (softflowd ``-a`` keeps the capture's own clock).
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from flowsentinel.collector import Collector
from flowsentinel.collector.peers import EXPORTS, free_port, send_datagrams, softflowd_export
from tests.collector.conftest import cli_env, needs

# The shared port scan, SYN flood and ICMP sweep, and a benign web session capture.
ATTACKS = ["ppa/ppa1e_portscan.pcap", "ppa/ppa1e_dosattack.pcap", "slips/test12-icmp-portscan.pcap"]
BENIGN = "ppa/http_espn.pcapng"
STARTUP_S = 300  # loading torch and the model on a busy 2-core machine


class CollectProcess:
    """``flowsentinel collect`` as a subprocess, its stderr read line by line in a thread."""

    def __init__(self, model: Path, out: Path, *extra: str):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flowsentinel.cli", "collect", "--listen", f"127.0.0.1:{self.port}",
             "--model-dir", str(model), "--output", str(out), *extra],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=cli_env())
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} from collect; it said: {self.seen[-10:]}")

    def finish(self, timeout: float = 120) -> tuple[int, list[str]]:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        while True:
            line = self.lines.get(timeout=10)
            if line is None:
                break
            self.seen.append(line)
        return rc, self.seen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def collect(tmp_path):
    started = []

    def start(model: Path, *extra: str) -> tuple[CollectProcess, Path]:
        out = tmp_path / f"alerts-{len(started)}.jsonl"
        proc = CollectProcess(model, out, *extra)
        started.append(proc)
        proc.wait_for("listening on", STARTUP_S)
        return proc, out

    yield start
    for proc in started:
        proc.stop()


def _ms(timestamp: str) -> int:
    return round(datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


@pytest.mark.slow
def test_replayed_captures_come_out_as_verdicts_and_alerts(pcaps, exporter_model, collect):
    needs("softflowd")
    exports = {name: softflowd_export(pcaps / name, EXPORTS["v9"]) for name in ATTACKS + [BENIGN]}
    # What the library makes of the same datagrams: the flows each capture must yield.
    expected, owner = {}, {}
    for name, export in exports.items():
        frames = Collector().collect([(d, "127.0.0.1") for d in export.datagrams])
        expected[name] = sum(len(f) for f in frames)
        for f in frames:
            for r in f.itertuples():
                owner[(r.IPV4_SRC_ADDR, r.L4_SRC_PORT, r.IPV4_DST_ADDR, r.L4_DST_PORT,
                       int(r.FLOW_START_MILLISECONDS))] = name
    proc, out = collect(exporter_model, "--exit-idle", "3", "--stats-every", "0")
    for export in exports.values():
        send_datagrams(export.datagrams, ("127.0.0.1", proc.port))
    rc, stderr = proc.finish()
    assert rc == 0, stderr[-5:]
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    per_capture: dict[str, list[dict]] = {name: [] for name in exports}
    for v in verdicts:
        key = (v["src_ip"], v.get("src_port", 0), v["dest_ip"], v.get("dest_port", 0), _ms(v["flow"]["start"]))
        per_capture[owner[key]].append(v)
    assert {n: len(v) for n, v in per_capture.items()} == expected
    for v in verdicts:
        assert v["event_type"] in ("alert", "flow") and ("alert" in v) == (v["event_type"] == "alert")
    share = {n: sum(v["event_type"] == "alert" for v in vs) / len(vs) for n, vs in per_capture.items()}
    assert min(share[ATTACKS[0]], share[ATTACKS[1]]) > share[BENIGN]
    # Host context runs in collect as in detect: the scan's 29 probes of one host are all flagged.
    assert share[ATTACKS[0]] == 1.0
    assert any(v["flowsentinel"].get("host_context", "").startswith("vertical scan") for v in per_capture[ATTACKS[0]])
    # The spoofed SYN flood (each SYN its own source and destination) and the ping sweep, through host context.
    assert share[ATTACKS[1]] >= 0.9 and share[ATTACKS[2]] >= 0.9
    assert any(v["flowsentinel"].get("host_context", "").startswith("half-open burst") for v in per_capture[ATTACKS[1]])
    assert any(v["flowsentinel"].get("host_context", "").startswith("horizontal scan") for v in per_capture[ATTACKS[2]])
    summary = stderr[-1]
    assert summary.startswith("collect: packets ") and f"scored {len(verdicts):,}" in summary
    assert "malformed 0" in summary and "kernel drops 0" in summary


def test_a_model_needing_columns_the_exporter_lacks_is_refused(pcaps, tmp_path, collect):
    needs("softflowd")
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    model = tmp_path / "v2-model"
    save_model(cnn_bilstm(max_epochs=1, verbose=False).fit(generate_flows(600, random_state=1)), model)
    proc, _ = collect(model)
    send_datagrams(softflowd_export(pcaps / ATTACKS[0], EXPORTS["v9"]).datagrams, ("127.0.0.1", proc.port))
    rc, stderr = proc.finish()
    assert rc == 2
    error = stderr[-1]
    assert error.startswith("flowsentinel: error: exporter 127.0.0.1 (NetFlow v9 source id 0) template ")
    assert "column(s) the model needs: " in error and "L7_PROTO" in error and "configs/exporter.toml" in error


@pytest.mark.slow
def test_sigterm_drains_the_pending_flows(pcaps, exporter_model, collect):
    needs("softflowd")
    export = softflowd_export(pcaps / ATTACKS[0], EXPORTS["v9"])
    # Records would wait a minute for a partner: only the drain can score them.
    proc, out = collect(exporter_model, "--stitch-wait", "60", "--stats-every", "0.2")
    send_datagrams(export.datagrams, ("127.0.0.1", proc.port))
    proc.wait_for(f"collector: packets {len(export.datagrams)} ", 60)
    assert out.read_text() == ""
    proc.proc.send_signal(signal.SIGTERM)
    rc, stderr = proc.finish()
    assert rc == 0
    assert any("stopped by SIGTERM; pending flows scored" in line for line in stderr)
    flows = Collector().collect([(d, "127.0.0.1") for d in export.datagrams])
    assert len(out.read_text().splitlines()) == sum(len(f) for f in flows)
