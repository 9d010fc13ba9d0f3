#!/usr/bin/env python3
"""``detect`` in one process against ``spark-detect`` in Spark local mode on one large flow file: one table, one run.

The file is built here, in a temporary folder, from the real NF-BoT-IoT-v2
sample: its lines repeated, unchanged, until ``--flows`` rows (5 M by
default; about 1.3 GB of uncompressed CSV, which Spark splits across its
tasks: a single gzip file would be read by one task). Nothing that a score
depends on is changed. A CNN-BiLSTM is trained briefly here on 20,000 of
the sample's flows (timing only), unless ``--model-dir`` names one.

Both commands run as users run them, in their own processes, with their
defaults (alert suppression on):

* the peer, ``flowsentinel detect FILE`` (one process, ONNX Runtime, one
  thread; EVE records for every flow);
* ``flowsentinel spark-detect FILE OUT --master local[N]`` (verdicts for
  every flow as Parquet, EVE alert records, bad rows).

Each row gives the wall time of the command, its own timing of the scoring
(``detect``'s and the Spark job's summaries), flows per second of both, and
the ratio to ``detect``. Spark's start-up (interpreter, imports, the JVM,
the session) is the command's wall time less the job's.

    PYTHONPATH=src nice python benchmarks/bench_spark.py [--flows 5000000] [--master 'local[2]'] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.paths import data_dir  # noqa: E402

SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"


def build_file(n_flows: int, folder: Path) -> Path:
    """The sample's data lines repeated, unchanged, to ``n_flows`` rows after its header."""
    with gzip.open(data_dir() / SAMPLE, "rt", newline="") as fh:
        header, *rows = fh.read().splitlines()
    path = folder / f"NF-BoT-IoT-v2-x{n_flows // 1000}k.csv"
    block = "\n".join(rows) + "\n"
    with open(path, "w", newline="") as out:
        out.write(header + "\n")
        left = n_flows
        while left >= len(rows):
            out.write(block)
            left -= len(rows)
        if left:
            out.write("\n".join(rows[:left]) + "\n")
    return path


def train_model(folder: Path) -> Path:
    from flowsentinel.io.readers import read_flows
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model

    flows, _ = read_flows(data_dir() / SAMPLE, max_rows=20_000)
    detector = cnn_bilstm(max_epochs=1, verbose=False, num_threads=1).fit(flows)
    return save_model(detector, folder / "model")


def timed(cmd: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return seconds, proc.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=5_000_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--model-dir", help="a saved flow-mode model (default: one trained briefly here)")
    ap.add_argument("--driver-memory", default="4g", help="Spark driver memory (local mode: executors live there)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = ap.parse_args()
    if not (data_dir() / SAMPLE).exists():
        sys.exit(f"the NF-BoT-IoT-v2 sample is not at {data_dir() / SAMPLE}; set FLOWSENTINEL_DATA")
    folder = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        t0 = time.perf_counter()
        path = build_file(args.flows, folder)
        built, size = time.perf_counter() - t0, path.stat().st_size
        model = Path(args.model_dir) if args.model_dir else train_model(folder)
        cli = [sys.executable, "-m", "flowsentinel.cli", "-q"]
        detect_s, _ = timed([*cli, "detect", str(path), "--model-dir", str(model), "--no-progress",
                             "--output", str(folder / "detect.jsonl"), "--summary", str(folder / "detect.json")])
        detect = json.loads((folder / "detect.json").read_text())
        spark_s, _ = timed([*cli, "spark-detect", str(path), str(folder / "spark"), "--model-dir", str(model),
                            "--master", args.master, "--conf", f"spark.driver.memory={args.driver_memory}",
                            "--summary", str(folder / "spark.json")])
        spark = json.loads((folder / "spark.json").read_text())
    finally:
        if args.keep:
            print(f"# kept: {folder}")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    n = detect["n_flows"]
    load = os.getloadavg()
    print(f"# detect against spark-detect {args.master}: {n:,} flows, one uncompressed CSV of {size / 1e9:.2f} GB")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} at the end; "
          f"file built in {built:.0f} s; model {model.name}")
    print()
    print("| run | flows | command wall s | scoring s | flows/s (wall) | flows/s (scoring) | ratio to detect (wall) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [("detect, 1 process", detect["n_flows"], detect_s, detect["seconds"]),
            (f"spark-detect, {args.master}", spark["n_flows"], spark_s, spark["seconds"])]
    for name, flows, wall, scoring in rows:
        print(f"| {name} | {flows:,} | {wall:.1f} | {scoring:.1f} | {flows / wall:,.0f} | {flows / scoring:,.0f} | "
              f"{detect_s / wall:.2f} |")
    print()
    print(f"Spark start-up (interpreter, imports, JVM, session; before the job): {spark_s - spark['seconds']:.1f} s. "
          f"detect's own start-up: {detect_s - detect['seconds']:.1f} s.")
    print(f"Alerts: detect {detect['n_alerts']:,}, spark-detect {spark['n_alerts']:,}; spark-detect wrote "
          f"{spark['n_alert_records']:,} alert records ({spark['n_followups']:,} follow-ups), "
          f"{spark['n_rejected']:,} bad rows.")
    if detect["n_flows"] != spark["n_flows"] or detect["n_alerts"] != spark["n_alerts"]:
        print("WARNING: the two commands did not score the same flows or raise the same alerts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
