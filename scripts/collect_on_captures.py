#!/usr/bin/env python3
"""Replay captures through softflowd into ``flowsentinel collect`` and count flows and alerts (one table).

Each capture is exported by a real exporter (``softflowd -r CAPTURE -n 127.0.0.1:PORT -v VERSION``)
to a ``collect`` process that stops once it has been idle for a few seconds; the counts come from
its verdicts. By default the check captures of ``pcaps/labels.csv`` (reporting only, never trained on).

    python scripts/collect_on_captures.py [--model-dir DIR] [--version 9|5|10] [CAPTURE ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flowsentinel.paths import data_dir


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replay(capture: Path, model_dir: str | None, version: int, work: Path) -> dict:
    port = free_udp_port()
    out, summary = work / f"{capture.stem}.jsonl", work / f"{capture.stem}.summary.json"
    cmd = [sys.executable, "-m", "flowsentinel.cli", "-q", "collect", "--listen", f"127.0.0.1:{port}", "-o", str(out),
           "--summary", str(summary), "--exit-idle", "3", "--max-seconds", "60", "--stats-every", "0"]
    if model_dir:
        cmd += ["--model-dir", model_dir]
    collector = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    # The collector loads its model before it binds: export only once it says it listens.
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = collector.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "listening on" in line:
            break
    exporter = subprocess.run(["softflowd", "-r", str(capture), "-n", f"127.0.0.1:{port}", "-v", str(version)],
                              capture_output=True, text=True, timeout=60)
    try:
        _, err = collector.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        collector.kill()
        _, err = collector.communicate()
    err = "".join(lines) + err
    if collector.returncode != 0:
        raise SystemExit(f"collect failed on {capture} (exit {collector.returncode}): {err.strip()}")
    if exporter.returncode != 0:
        raise SystemExit(f"softflowd failed on {capture}: {exporter.stderr.strip()}")
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    flows = [r for r in records if "flowsentinel" in r and not r["flowsentinel"].get("aggregate")]
    folded = sum(r["flowsentinel"]["aggregate"]["count"] for r in records
                 if r.get("flowsentinel", {}).get("aggregate"))
    counters = json.loads(summary.read_text()) if summary.exists() else {}
    alerts = sum(1 for r in flows if r["flowsentinel"].get("alert")) + folded
    return {"flows": len(flows) + folded, "alerts": alerts, "datagrams": counters.get("datagrams")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("captures", nargs="*", type=Path)
    ap.add_argument("--model-dir", help="default: the shipped exporter model")
    ap.add_argument("--version", type=int, default=9, choices=(5, 9, 10))
    args = ap.parse_args()
    if not shutil.which("softflowd"):
        raise SystemExit("softflowd is not installed (Debian: apt-get install softflowd)")
    labels = {}
    captures = args.captures
    if not captures:
        root = data_dir() / "pcaps"
        with open(root / "labels.csv", newline="") as f:
            for row in csv.DictReader(f):
                if row.get("use") == "check":
                    labels[str(root / row["capture"])] = row.get("label", "")
        captures = [Path(p) for p in labels]
    print(f"| capture | label | flows | alerts |  (softflowd -v {args.version} into flowsentinel collect)")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for capture in captures:
            r = replay(capture, args.model_dir, args.version, Path(tmp))
            name = "/".join(capture.parts[-2:])
            print(f"| {name} | {labels.get(str(capture), '')} | {r['flows']} | {r['alerts']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
