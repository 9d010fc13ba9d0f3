#!/usr/bin/env python3
"""Metering throughput (packets/s, flows/s) on the largest shared capture.

Prints one table measured in one run: the full meter (nfstream + the NF v2
plugin + DataFrame chunks) and, for scale, bare nfstream on the same capture
without the plugin. Each row is the best of ``--repeat`` runs; process
start-up of nfstream's meter is included, as a user would see it.

    PYTHONPATH=src python benchmarks/bench_metering.py [--capture PATH] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.metering import MeterConfig, inspect_capture, meter_capture  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402


def largest_capture(root: Path) -> Path:
    caps = [p for p in (root / "pcaps").rglob("*") if p.suffix in (".pcap", ".pcapng")]
    if not caps:
        raise SystemExit(f"no captures under {root}/pcaps; set FLOWSENTINEL_DATA")
    return max(caps, key=lambda p: p.stat().st_size)


def time_meter(path: Path) -> tuple[float, int, int]:
    start = time.perf_counter()
    run = meter_capture(path, MeterConfig())
    flows = sum(len(chunk) for chunk in run)
    return time.perf_counter() - start, run.stats.packets_metered, flows


def time_bare_nfstream(path: Path) -> tuple[float, int, int]:
    from nfstream import NFStreamer

    start = time.perf_counter()
    packets = flows = 0
    for flow in NFStreamer(source=str(path), n_meters=1, accounting_mode=1):
        packets += flow.bidirectional_packets
        flows += 1
    return time.perf_counter() - start, packets, flows


def main() -> int:
    root = data_dir()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capture", type=Path, default=None, help="capture to meter (default: largest shared one)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row; the best is reported")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    cap = args.capture or largest_capture(root)
    info = inspect_capture(cap)
    rows = []
    for name, fn in (("flowsentinel meter (NF v2)", time_meter), ("bare nfstream, no plugin", time_bare_nfstream)):
        best = min((fn(cap) for _ in range(args.repeat)), key=lambda r: r[0])
        rows.append((name, *best))
    print(f"capture: {cap} ({info.size_bytes / 1e6:.2f} MB, {info.packets} packets, {info.format})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"best of {args.repeat} runs each, wall clock including meter start-up\n")
    print(f"| {'run':<28} | {'seconds':>8} | {'packets':>8} | {'flows':>6} | {'packets/s':>10} | {'flows/s':>8} |")
    print(f"|{'-' * 30}|{'-' * 9}:|{'-' * 9}:|{'-' * 7}:|{'-' * 11}:|{'-' * 9}:|")
    for name, secs, packets, flows in rows:
        print(f"| {name:<28} | {secs:>8.3f} | {packets:>8} | {flows:>6} | {packets / secs:>10.0f} | {flows / secs:>8.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
