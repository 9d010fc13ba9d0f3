#!/usr/bin/env python3
"""Collector throughput: records/s decoded alone, decoded and scored, beside nfcapd on the same datagrams.

One run prints two tables. The datagrams are softflowd's exports (NetFlow v9 and
IPFIX, ``-a``) of the largest shared capture, repeated ``--repeat`` times.

* **in memory**: the datagrams fed to the collector in this process, no
  socket: decoding alone (datagrams to record columns), decoding into NF
  flows with stitching (the frames a model scores), and the same scored by a
  model with verdicts written to /dev/null. Rate: records per wall-clock
  second.
* **loopback**: a receiver in its own process gets the datagrams over UDP
  at one paced rate: ``flowsentinel``'s receive loop (decode and stitch,
  then also score), and nfdump's ``nfcapd``. Rate: records per CPU second
  of the receiver (its user + system time while receiving; the sender's is
  not counted), with the kernel's drops beside it.

A last run sends the first ``--latency-datagrams`` datagrams at a moderate
``--latency-rate`` and reports the time from a flow's first record arriving to
its verdict being written.

The model (``--model-dir``, default: a network with the default settings
trained for one epoch on synthetic flows with configs/exporter.toml's
columns, for timing only) scores through ONNX Runtime where installed.

    PYTHONPATH=src python benchmarks/bench_collector.py [--repeat 10] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.collector import Collector, CollectorConfig, Decoder  # noqa: E402
from flowsentinel.collector.counters import udp_sockets  # noqa: E402
from flowsentinel.collector.peers import EXPORTS, free_port, listening, send_datagrams, softflowd_export  # noqa: E402
from flowsentinel.collector.records import records_from_chunks  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402

# The receiver child: listen, say where, collect until idle, report CPU seconds from "ready" to the end.
_RECEIVER = r"""
import json, resource, sys
from flowsentinel.collector import Collector, CollectorConfig, UdpListener
sink = check = None
if sys.argv[1] != "-":
    import os
    from flowsentinel.collector.scoring import Scorer
    sink = Scorer(sys.argv[1], open(os.devnull, "w"))
with UdpListener("127.0.0.1", 0, receive_buffer=64 << 20) as rx:
    c = Collector(CollectorConfig(stats_every_s=0), sink)
    print(rx.address[1], flush=True)
    sys.stdin.readline()
    before = resource.getrusage(resource.RUSAGE_SELF)
    c.run(rx, idle_exit_s=1.0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"cpu": cpu, "records": c.counters.records, "flows": c.counters.flows,
                      "scored": c.counters.flows_scored, "drops": c.counters.kernel_drops,
                      "alerts": c.counters.alerts, "latency": c.counters.latency()}), flush=True)
"""


def largest_capture(root: Path) -> Path:
    caps = [p for p in (root / "pcaps").rglob("*") if p.suffix in (".pcap", ".pcapng")]
    if not caps:
        raise SystemExit(f"no captures under {root}/pcaps; set FLOWSENTINEL_DATA")
    return max(caps, key=lambda p: p.stat().st_size)


def quick_model(folder: Path) -> Path:
    from flowsentinel.config import load_config
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    features = load_config(str(REPO / "configs" / "exporter.toml"), []).features
    model = folder / "model"
    save_model(cnn_bilstm(max_epochs=1, verbose=False, feature_config=features)
               .fit(generate_flows(5000, random_state=0)), model)
    return model


def in_memory(datagrams: list[bytes], model: Path | None) -> dict[str, tuple[int, float]]:
    out = {}
    d = Decoder()
    start = time.perf_counter()
    for data in datagrams:
        d.feed(data, "127.0.0.1", 0.0)
    records_from_chunks(d.take())
    out["decode: datagrams to record columns"] = (d.counters.records, time.perf_counter() - start)
    c = Collector(CollectorConfig())
    start = time.perf_counter()
    c.collect([(data, "127.0.0.1") for data in datagrams])
    out["decode + NF flows + stitching"] = (c.counters.records, time.perf_counter() - start)
    if model is not None:
        from flowsentinel.collector.scoring import Scorer

        with open(os.devnull, "w") as sink:
            scorer = Scorer(str(model), sink)
            c = Collector(CollectorConfig())
            start = time.perf_counter()
            scorer(c.collect([(data, "127.0.0.1") for data in datagrams]))
            out["decode + stitching + scoring"] = (c.counters.records, time.perf_counter() - start)
    return out


def loopback_collector(datagrams: list[bytes], model: Path | None, *, per_second: float | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-c", _RECEIVER, str(model) if model else "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        port = int(proc.stdout.readline())
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if per_second is None:
            send_datagrams(datagrams, ("127.0.0.1", port), pace_every=32, pace_s=0.001)
        else:
            send_datagrams(datagrams, ("127.0.0.1", port), pace_every=1, pace_s=1.0 / per_second)
        result = json.loads(proc.stdout.readline())
        proc.wait(timeout=120)
        return result
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def loopback_nfcapd(datagrams: list[bytes]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = subprocess.Popen(["nfcapd", "-p", str(port), "-b", "127.0.0.1", "-w", tmp, "-B", str(64 << 20)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not listening(port) and time.monotonic() < deadline:
            time.sleep(0.02)
        send_datagrams(datagrams, ("127.0.0.1", port), pace_every=32, pace_s=0.001)
        time.sleep(1.0)
        drops = sum(row.drops for row in udp_sockets() if row.port == port)
        proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        stats = subprocess.run(["nfdump", "-R", tmp, "-I"], capture_output=True, text=True).stdout
    flows = next((int(line.split(":")[1]) for line in stats.splitlines() if line.startswith("Flows:")), 0)
    return {"cpu": usage.ru_utime + usage.ru_stime, "records": flows, "drops": drops}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, help="capture softflowd exports (default: the largest shared one)")
    parser.add_argument("--repeat", type=int, default=10, help="times the export is sent (default 10)")
    parser.add_argument("--model-dir", type=Path, help="model to score with (default: a quick synthetic one)")
    parser.add_argument("--no-score", action="store_true", help="leave the scoring rows out")
    parser.add_argument("--latency-datagrams", type=int, default=500,
                        help="datagrams of the moderate-load latency run (default 500)")
    parser.add_argument("--latency-rate", type=float, default=100.0,
                        help="datagrams per second in the latency run (default 100)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for tool in ("softflowd", "nfcapd", "nfdump"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    capture = args.capture or largest_capture(data_dir())
    with tempfile.TemporaryDirectory() as tmp:
        model = None if args.no_score else (args.model_dir or quick_model(Path(tmp)))
        rows = []
        latency = None
        for name in ("v9", "ipfix"):
            export = softflowd_export(capture, EXPORTS[name])
            datagrams = export.datagrams * args.repeat
            for what, (records, seconds) in in_memory(datagrams, model).items():
                rows.append((name, "in memory", what, records, seconds, "wall", 0))
            peer = loopback_nfcapd(datagrams)
            rows.append((name, "loopback", "nfcapd (nfdump 1.7.1)", peer["records"], peer["cpu"], "CPU", peer["drops"]))
            for scored in ([False, True] if model is not None else [False]):
                got = loopback_collector(datagrams, model if scored else None)
                rows.append((name, "loopback", "flowsentinel receive loop" + (" + scoring" if scored else ""),
                             got["records"], got["cpu"], "CPU", got["drops"]))
            if name == "v9" and model is not None:
                moderate = export.datagrams[:args.latency_datagrams]
                latency = (len(moderate), loopback_collector(moderate, model, per_second=args.latency_rate))
    print(f"capture: {capture.name}; datagrams sent {args.repeat}x; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print("| export | where | path | records | seconds | records/s | vs nfcapd | kernel drops |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name in ("v9", "ipfix"):
        mine = [r for r in rows if r[0] == name]
        peer = next(r for r in mine if r[2].startswith("nfcapd"))
        peer_rate = peer[3] / peer[4] if peer[4] else float("nan")
        for _, where, what, records, seconds, clock, drops in mine:
            rate = records / seconds if seconds else float("nan")
            print(f"| {name} | {where} | {what} | {records:,} | {seconds:.2f} ({clock}) | {rate:,.0f} | "
                  f"{rate / peer_rate:.2f} | {drops:,} |")
    if latency is not None:
        n, got = latency
        lat = got["latency"]
        print()
        print(f"moderate load (v9, scored, every verdict written): {n} datagrams at {args.latency_rate:g}/s, "
              f"{got['records']:,} records, {got['scored']:,} flows, {got['alerts']:,} alerts")
        print("| first record arrived to verdict written | p50 | p99 | max |")
        print("|---|---:|---:|---:|")
        print(f"| seconds | {lat['p50']:.3f} | {lat['p99']:.3f} | {lat['max']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
