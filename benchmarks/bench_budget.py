#!/usr/bin/env python3
"""What the two speed bars of ``bench_detect.py`` leave each stage, against what the stages cost, in one run.

Bar (b): ``detect`` of a 1M-flow CSV (CSV out, default network) at no less
than half the rate at which ``pyarrow.csv.read_csv`` parses the same file.
Bar (c): ``detect`` with the ``configs/paper.toml`` network faster than an
Extra Trees (100 trees) + pyarrow pipeline doing the same job.

This script measures, on the same generated file as ``bench_detect.py``
(``--repeat`` rounds, medians):

- the parse: ``pyarrow.csv.read_csv`` of the whole file in this process,
  wall and CPU seconds (all threads);
- ``detect`` of the file in a fresh process (as ``bench_detect.py`` runs it),
  wall and CPU seconds, and ``detect`` of a one-row CSV (its start-up);
- each network alone: the project's ONNX Runtime engine (one thread, the
  slices ``detect`` uses) over as many flows, in chunks of 50,000;
- the kernel's copy of the verdicts into the page cache: ``detect``'s
  output bytes written to a new file, the process's system CPU seconds;
- the Extra Trees peer of (c) with as many threads as there are cores
  (at most two, as in ``bench_detect.py``).

From those it prints the CPU that bar (b) leaves on this machine's cores,
``cores x (2 x parse wall - start-up wall)``, against a floor that no code
around the network can go below: the parse, the network and the kernel's
copy of the output, which every way of doing the job pays. For (c) it prints
the most flows a second the paper network alone can score on the cores
against the trees' rate. A floor above what the bar leaves means the bar
cannot be met here by changing the code around the network.

    PYTHONPATH=src python benchmarks/bench_budget.py --rows 1000000
    PYTHONPATH=src python benchmarks/bench_budget.py --rows 1000000 --model-dir K/m-default --paper-model-dir K/m-paper
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_detect import (  # noqa: E402
    REPO,
    SAMPLE,
    build_flows,
    checked,
    detect_cmd,
    one_row,
    run_usage,
    train,
    train_trees,
    write_train_slice,
)

from flowsentinel.paths import data_dir  # noqa: E402

CHUNK_ROWS = 50_000  # detect's chunk (StreamConfig.chunk_rows)


def cpu_seconds() -> tuple[float, float]:
    """This process's user and system CPU seconds so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def timed(work) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, all threads) of ``work()`` in this process."""
    cpu0, t0 = sum(cpu_seconds()), time.perf_counter()
    work()
    return time.perf_counter() - t0, sum(cpu_seconds()) - cpu0


def parse(path: Path, rows: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``pyarrow.csv.read_csv`` over the whole file."""
    import pyarrow.csv as pcsv

    def work():
        n = pcsv.read_csv(path).num_rows
        assert n == rows, (n, rows)

    return timed(work)


def network(model_dir: Path, rows: int) -> tuple[float, float]:
    """Wall and CPU seconds of the model's ONNX graph alone over ``rows`` flows, as ``detect`` runs it."""
    from flowsentinel.models.engines import InferenceConfig, OnnxEngine

    engine = OnnxEngine(model_dir / "model.onnx", InferenceConfig(engine="onnx", intra_op_threads=1))
    shape = engine.session.get_inputs()[0].shape[1:]
    chunk = np.random.default_rng(0).normal(size=(CHUNK_ROWS, *shape)).astype(np.float32)
    engine(chunk[:1024])  # warm-up

    def work():
        for start in range(0, rows, CHUNK_ROWS):
            engine(chunk[: min(CHUNK_ROWS, rows - start)])

    return timed(work)


def kernel_write(src: Path, dst: Path) -> float:
    """System CPU seconds of writing ``src``'s bytes to a new file ``dst`` in blocks of 1 MB."""
    view = memoryview(src.read_bytes())
    dst.unlink(missing_ok=True)
    _, s0 = cpu_seconds()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(0, len(view), 1 << 20):
            os.write(fd, view[i : i + (1 << 20)])
    finally:
        os.close(fd)
    _, s1 = cpu_seconds()
    dst.unlink()
    return s1 - s0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="flows in the file (default 1,000,000)")
    parser.add_argument("--train-rows", type=int, default=20_000, help="flows the networks briefly learn from")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, help="a saved default-network model (else trained here)")
    parser.add_argument("--paper-model-dir", type=Path, help="a saved paper-network model (else trained here)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the tables give medians (default 3)")
    parser.add_argument("--sample", type=Path, default=data_dir() / SAMPLE)
    args = parser.parse_args()
    if not args.sample.exists():
        raise SystemExit(f"{args.sample}: sample not found; set FLOWSENTINEL_DATA")
    cores = os.cpu_count() or 1
    jobs = min(cores, 2)
    src = REPO / "src"
    started = time.perf_counter()
    load_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench_budget_") as tmp_name:
        tmp = Path(tmp_name)
        flows = tmp / "flows.csv"
        build_flows(args.sample, args.rows, flows)
        one = tmp / "one.csv"
        one_row(flows, one)
        train_csv = tmp / "train.csv"
        write_train_slice(args.sample, args.train_rows, train_csv)
        default = args.model_dir or train(REPO / "configs/default.toml", train_csv, tmp / "m-default", args.epochs)
        paper = args.paper_model_dir or train(REPO / "configs/paper.toml", train_csv, tmp / "m-paper", args.epochs)
        trees = tmp / "trees.pickle"
        train_trees(paper, train_csv, trees, 1)
        out = tmp / "verdicts.csv"

        def detect_run() -> tuple[float, float]:
            seconds, _, cpu = run_usage(detect_cmd(flows, default, out), src)
            return checked((seconds, cpu), out, args.rows)

        def start_up() -> tuple[float, float]:
            seconds, _, cpu = run_usage(detect_cmd(one, default, tmp / "one.out"), src)
            return seconds, cpu

        def trees_run() -> tuple[float, float]:
            seconds, _, cpu = run_usage([sys.executable, str(HERE / "bench_detect.py"), "_trees", str(trees),
                                         str(flows), str(tmp / "trees.csv"), str(jobs)], src)
            return seconds, cpu

        measures = {
            "parse": lambda: parse(flows, args.rows),
            "detect": detect_run,
            "start-up": start_up,
            "default network": lambda: network(default, args.rows),
            "paper network": lambda: network(paper, args.rows),
            "kernel write": lambda: (float("nan"), kernel_write(out, tmp / "copy.csv")),
            "trees": trees_run,
        }
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in measures}
        for _ in range(args.repeat):
            for key, measure in measures.items():
                got[key].append(measure())
        wall = {k: statistics.median(r[0] for r in v) for k, v in got.items()}
        cpu = {k: statistics.median(r[1] for r in v) for k, v in got.items()}
        verdict_mb = out.stat().st_size / 1e6

    per = f"{args.rows:,} flows"
    print(f"# the CPU bars (b) and (c) leave, {per} generated from {args.sample.name}; "
          f"{platform.processor() or platform.machine()}, {cores} CPUs, Python {platform.python_version()}; "
          f"medians of {args.repeat}; load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the "
          f"end; {time.perf_counter() - started:,.0f} s in all")
    print()
    print(f"| measured, {per} | wall s | CPU s |")
    print("|---|---:|---:|")
    rows = [("pyarrow.csv.read_csv of the file, in process", "parse"),
            ("detect, default network, CSV out, fresh process", "detect"),
            ("detect of a one-row CSV (start-up)", "start-up"),
            ("default network alone (ONNX Runtime, 1 thread)", "default network"),
            ("paper network alone (ONNX Runtime, 1 thread)", "paper network"),
            (f"kernel's copy of the verdicts ({verdict_mb:,.0f} MB) into the page cache", "kernel write"),
            (f"Extra Trees (100) + pyarrow read/predict/write, n_jobs {jobs}", "trees")]
    for label, key in rows:
        w = "" if np.isnan(wall[key]) else f"{wall[key]:.2f}"
        print(f"| {label} | {w} | {cpu[key]:.2f} |")

    allowed = 2 * wall["parse"]
    left = cores * max(allowed - wall["start-up"], 0.0)
    floor = cpu["parse"] + cpu["default network"] + cpu["kernel write"]
    print()
    print(f"| (b) at 0.50 of the parse, {per} | seconds |")
    print("|---|---:|")
    print(f"| wall allowed: 2 x the parse's wall | {allowed:.2f} |")
    print(f"| less start-up: CPU left on {cores} cores, {cores} x (allowed - start-up) | {left:.2f} |")
    print(f"| floor: the parse + the default network + the kernel's copy, CPU | {floor:.2f} |")
    if left > 0:
        print(f"| floor / CPU left (above 1: not reachable by the code around the network) | {floor / left:.2f} |")
        print(f"| detect's CPU now / CPU left | {cpu['detect'] / left:.2f} |")
    else:
        print("| floor / CPU left | start-up alone is over the bar |")

    cap = args.rows / (cpu["paper network"] / cores)
    trees_rate = args.rows / wall["trees"]
    print()
    print("| (c) flows/s | rate |")
    print("|---|---:|")
    print(f"| paper network alone on all {cores} cores, nothing else (most detect can reach) | {cap:,.0f} |")
    print(f"| Extra Trees + pyarrow, n_jobs {jobs}, whole job | {trees_rate:,.0f} |")
    print(f"| ratio (below 1: the network alone is slower than the peer's whole job) | {cap / trees_rate:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
