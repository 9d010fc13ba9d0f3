#!/usr/bin/env python3
"""``flowsentinel detect`` end to end against pyarrow's parse and an Extra Trees pipeline, in one run.

Builds a CSV of ``--rows`` flows (and one of ``--big-rows``, default four
times as many) in a temporary folder from the shared NF-BoT-IoT-v2 sample:
its rows repeated, each repetition with other source ports, source hosts
(the third octet of ``IPV4_SRC_ADDR``) and byte counts. Then, in one run:

a. pyarrow: ``pyarrow.csv.read_csv`` of the file alone (rows/s);
b. ``detect`` (the command line, in a fresh process: start-up included) of
   the file, CSV verdicts out, with the ``configs/default.toml`` network
   through ONNX Runtime; its rate and its ratio to (a); beside it the same
   work with the stages run in turn (``StreamConfig(concurrent=False)``);
c. the same with the ``configs/paper.toml`` network (with the scoring
   workers ``detect`` chooses, two on a 2-core machine, and with one),
   beside an Extra Trees (100 trees) + pyarrow pipeline doing the same job
   in its own process: ``pyarrow.csv.open_csv`` batches, ``predict_proba``
   on the model's input columns, a CSV of row, score, class and alert
   written by ``pyarrow.csv.CSVWriter`` (fewer columns than ``detect``
   writes), with ``--threads`` trees' threads and with as many as the
   network gets in two workers;
d. the peak memory (the process's own ``ru_maxrss``, from ``os.wait4``) of
   ``detect`` on both files, per-flow and windowed, and their ratio;
e. the cold start of ``detect`` on a one-row CSV and on a one-flow capture
   (``pcaps/ndpi/NTPv4.pcap``): wall time (median of ``--cold-repeat``) and
   peak memory, with ``--before-src`` (the ``src`` folder of a checkout of
   the code before the change) and with this checkout.

Each measurement of (a)-(d) is taken ``--repeat`` times (default 3), in
rounds that take every row once, and the tables give each row's median and
range: the machine's state (its page cache, memory handed back, other load)
moves a single run by tens of percent, the parse alone among them.

The networks are trained briefly inside the run (``--train-rows`` flows of
the sample, ``--epochs``: speed does not depend on accuracy) unless
``--model-dir``, ``--paper-model-dir`` and ``--window-model-dir`` name saved
models.

    git worktree add --detach /tmp/fs-base d01e3ca   # the code before, for (e)
    PYTHONPATH=src python benchmarks/bench_detect.py --before-src /tmp/fs-base/src
    PYTHONPATH=src python benchmarks/bench_detect.py --rows 100000 --skip-big   # a quick try (about 3 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.paths import data_dir  # noqa: E402

SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"
CAPTURE = "pcaps/ndpi/NTPv4.pcap"


# ---- inputs ------------------------------------------------------------------------------------


def build_flows(sample: Path, rows: int, out: Path, seed: int = 0) -> int:
    """``rows`` flows: the sample's rows repeated, each repetition with other ports, hosts and byte counts."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(sample)
    rng = np.random.default_rng(seed)
    with open(out, "wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        writer = pcsv.CSVWriter(fh, table.schema, write_options=pcsv.WriteOptions(include_header=False,
                                                                                   quoting_style="needed"))
        written, rep = 0, 0
        while written < rows:
            part = table.slice(0, min(len(table), rows - written))
            n = len(part)
            cols = {name: part.column(name) for name in part.column_names}
            cols["L4_SRC_PORT"] = pa.array(rng.integers(1024, 65536, n), type=cols["L4_SRC_PORT"].type)
            for name in ("IN_BYTES", "OUT_BYTES"):
                cols[name] = pc.add(cols[name], pa.array(rng.integers(0, 3, n), type=cols[name].type))
            if rep:
                cols["IPV4_SRC_ADDR"] = pc.replace_substring_regex(cols["IPV4_SRC_ADDR"], r"^(\d+\.\d+)\.\d+\.",
                                                                   rf"\1.{rep % 256}.")
            writer.write_table(pa.table(cols, schema=part.schema))
            written += n
            rep += 1
        writer.close()
    return written


def write_train_slice(sample: Path, rows: int, out: Path) -> None:
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(sample)
    pcsv.write_csv(table.slice(0, rows), out)


def one_row(path: Path, out: Path) -> None:
    with open(path) as src, open(out, "w") as dst:
        dst.write(src.readline())
        dst.write(src.readline())


# ---- processes --------------------------------------------------------------------------------------


# Starts the measured command from a small process: a child's ru_maxrss starts from its parent's
# size at fork (Linux keeps it across exec), so the benchmark's own memory must not be the parent.
_LAUNCHER = (
    "import json, os, subprocess, sys, time\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "_, status, usage = os.wait4(p.pid, 0)\n"
    "print(json.dumps([time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status),\n"
    "                  usage.ru_utime + usage.ru_stime]))\n"
)


def run_measured(cmd: list[str], src: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one process."""
    seconds, mb, _ = run_usage(cmd, src)
    return seconds, mb


def run_usage(cmd: list[str], src: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system, all threads) of one process."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env.setdefault("FLOWSENTINEL_DATA", str(data_dir()))
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *map(str, cmd)], env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"{' '.join(map(str, cmd))}: the launcher failed:\n{proc.stderr[-2000:]}")
    seconds, maxrss_kb, code, cpu = json.loads(proc.stdout.strip().splitlines()[-1])
    if code != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({code}):\n{proc.stderr[-2000:]}")
    return seconds, maxrss_kb / 1024, cpu


# The rows of (a)-(d) that the memory table and the ratios look up again.
PARSE = "(a) pyarrow.csv.read_csv alone"
DEFAULT = "(b) detect, default network, ONNX, CSV out"
IN_TURN = "(b) the same work, stages in turn (StreamConfig(concurrent=False))"
WINDOWED = "(d) detect, windowed default network, CSV out"


def parse_seconds(path: Path, rows: int) -> float:
    """Seconds ``pyarrow.csv.read_csv`` takes over the whole file, in this process."""
    import pyarrow.csv as pcsv

    t0 = time.perf_counter()
    n_parsed = pcsv.read_csv(path).num_rows
    seconds = time.perf_counter() - t0
    assert n_parsed == rows, (n_parsed, rows)
    return seconds


def checked(measured: tuple[float, float], out: Path, rows: int) -> tuple[float, float]:
    """``measured``, once ``out`` holds a verdict line for each of ``rows`` flows."""
    n_lines = sum(1 for _ in open(out)) - 1
    if n_lines != rows:
        raise SystemExit(f"detect wrote {n_lines:,} verdicts for {rows:,} flows")
    return measured


def detect_cmd(path: Path, model: Path, out: Path, fmt: str = "csv", threads: int = 1,
               workers: int | None = None) -> list[str]:
    return [sys.executable, "-m", "flowsentinel.cli", "-q", "detect", str(path), "--model-dir", str(model),
            "--engine", "onnx", "--threads", str(threads), "--format", fmt, "--no-progress", "-o", str(out)] + (
        ["--workers", str(workers)] if workers else [])


def train(config: Path, data: Path, out: Path, epochs: int, mode: str | None = None) -> Path:
    cmd = [sys.executable, "-m", "flowsentinel.cli", "-q", "train", "--config", str(config), "--data", str(data),
           "--model-dir", str(out), "--epochs", str(epochs), "--no-reference"]
    if mode:
        cmd += ["--mode", mode]
    run_measured(cmd, REPO / "src")
    return out


# ---- the Extra Trees peer ------------------------------------------------------------------------------------


def train_trees(model_dir: Path, data: Path, out: Path, threads: int) -> None:
    """Extra Trees (100 trees) on the raw input columns of the flows the networks learnt from."""
    import pickle

    import pandas as pd
    from sklearn.ensemble import ExtraTreesClassifier

    columns = json.loads((model_dir / "preprocessing.json").read_text())["input_columns"]
    flows = pd.read_csv(data)
    trees = ExtraTreesClassifier(n_estimators=100, n_jobs=threads, random_state=0)
    trees.fit(flows[columns].to_numpy(dtype=np.float32), flows["Attack"].to_numpy())
    with open(out, "wb") as fh:  # a benchmark's own temporary file, never a model directory
        pickle.dump({"trees": trees, "columns": columns}, fh)


def trees_pipeline(model: Path, path: Path, out: Path, n_jobs: int) -> None:
    """Read with pyarrow, score with the trees on ``n_jobs`` threads, write a verdict CSV with pyarrow."""
    import pickle

    import pyarrow as pa
    import pyarrow.csv as pcsv

    with open(model, "rb") as fh:
        saved = pickle.load(fh)
    trees, columns = saved["trees"], saved["columns"]
    trees.n_jobs = n_jobs
    classes = np.asarray(trees.classes_, dtype=object)
    benign = int(np.flatnonzero(classes == "Benign")[0]) if "Benign" in classes else None
    schema = pa.schema([("row", pa.int64()), ("score", pa.float64()), ("predicted_class", pa.string()),
                        ("alert", pa.int8())])
    reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=16 << 20),
                           convert_options=pcsv.ConvertOptions(include_columns=columns))
    row = 2
    with pcsv.CSVWriter(out, schema) as writer:
        for batch in reader:
            X = np.column_stack([batch.column(c).to_numpy(zero_copy_only=False) for c in columns]).astype(np.float32)
            proba = trees.predict_proba(X)
            score = 1.0 - proba[:, benign] if benign is not None else np.ones(len(X))
            n = len(X)
            writer.write_table(pa.table({"row": np.arange(row, row + n), "score": score,
                                         "predicted_class": classes[np.argmax(proba, axis=1)].astype(str),
                                         "alert": (score >= 0.5).astype(np.int8)}, schema=schema))
            row += n


def detect_in_turn(model: Path, path: Path, out: Path, threads: int) -> None:
    """``detect``'s work with the stages run one after the other (``StreamConfig(concurrent=False)``)."""
    from flowsentinel.cli._common import load_detector
    from flowsentinel.serving.detect import StreamConfig, detect_file

    detector = load_detector(str(model), None, "onnx", threads)
    with open(out, "w", newline="") as fh:
        detect_file(detector, path, fh, "csv", progress=False, stream=StreamConfig(concurrent=False))


# ---- the run -----------------------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_trees":  # the peer's own process
        trees_pipeline(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "_in_turn":
        detect_in_turn(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="flows in the main file (default 1,000,000)")
    parser.add_argument("--big-rows", type=int, help="flows in the memory-ratio file (default 4 x --rows)")
    parser.add_argument("--skip-big", action="store_true", help="leave out (d)'s big file: a quick try")
    parser.add_argument("--train-rows", type=int, default=20_000, help="flows the networks briefly learn from")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--model-dir", type=Path, help="a saved default-network model (else trained here)")
    parser.add_argument("--paper-model-dir", type=Path, help="a saved paper-network model (else trained here)")
    parser.add_argument("--window-model-dir", type=Path, help="a saved windowed model (else trained here)")
    parser.add_argument("--threads", type=int, default=1, help="detect --threads and the trees' n_jobs (default 1)")
    parser.add_argument("--before-src", type=Path, help="src folder of the code before, for (e)'s before rows")
    parser.add_argument("--repeat", type=int, default=3,
                        help="measurements of each of (a)-(d), in rounds; the tables give medians (default 3)")
    parser.add_argument("--cold-repeat", type=int, default=3)
    parser.add_argument("--sample", type=Path, default=data_dir() / SAMPLE)
    parser.add_argument("--keep", type=Path, help="keep the generated files and models in this folder")
    args = parser.parse_args()
    if not args.sample.exists():
        raise SystemExit(f"{args.sample}: sample not found; set FLOWSENTINEL_DATA")
    big_rows = None if args.skip_big else (args.big_rows or 4 * args.rows)
    src = REPO / "src"
    started = time.perf_counter()
    load_start = os.getloadavg()[0]

    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench_detect_") if args.keep is None else None
    tmp = Path(tmp_ctx.name) if tmp_ctx else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        flows = tmp / "flows.csv"
        build_flows(args.sample, args.rows, flows)
        big = None
        if big_rows:
            big = tmp / "flows-big.csv"
            build_flows(args.sample, big_rows, big)
        train_csv = tmp / "train.csv"
        write_train_slice(args.sample, args.train_rows, train_csv)
        default = args.model_dir or train(REPO / "configs/default.toml", train_csv, tmp / "m-default", args.epochs)
        paper = args.paper_model_dir or train(REPO / "configs/paper.toml", train_csv, tmp / "m-paper", args.epochs)
        window = args.window_model_dir or train(REPO / "configs/default.toml", train_csv, tmp / "m-window",
                                                args.epochs, mode="window")
        trees = tmp / "trees.pickle"
        train_trees(paper, train_csv, trees, args.threads)
        out = tmp / "verdicts.csv"

        jobs = args.threads * min(os.cpu_count() or 1, 2)
        # Each measurement of (a)-(d) is taken --repeat times, in rounds (every row once a round), so that
        # what the machine does meanwhile (its page cache, other load) falls on every row alike; the
        # tables give each row's median and range.
        rows = {  # label: a callable giving (seconds, peak RSS MB or None)
            PARSE: lambda: (parse_seconds(flows, args.rows), None),
            DEFAULT:
                lambda: checked(run_measured(detect_cmd(flows, default, out, threads=args.threads), src),
                                out, args.rows),
            IN_TURN:
                lambda: run_measured([sys.executable, __file__, "_in_turn", str(default), str(flows), str(out),
                                      str(args.threads)], src),
            # detect chooses two scoring workers for the paper network on two or more cores: the trees get
            # as many threads beside it, and both run with one as well.
            "(c) detect, paper network, ONNX, CSV out (scoring workers chosen)":
                lambda: run_measured(detect_cmd(flows, paper, out, threads=args.threads), src),
            "(c) the same, one scoring worker (--workers 1)":
                lambda: run_measured(detect_cmd(flows, paper, out, threads=args.threads, workers=1), src),
            f"(c) Extra Trees (100) + pyarrow read/predict/write, n_jobs {args.threads}":
                lambda: run_measured([sys.executable, __file__, "_trees", str(trees), str(flows), str(out),
                                      str(args.threads)], src),
            f"(c) the same, n_jobs {jobs}":
                lambda: run_measured([sys.executable, __file__, "_trees", str(trees), str(flows), str(out),
                                      str(jobs)], src),
            WINDOWED:
                lambda: run_measured(detect_cmd(flows, window, out, threads=args.threads), src),
        }
        measured: dict[str, list[tuple[float, float | None]]] = {label: [] for label in rows}
        for _ in range(args.repeat):
            for label, measure in rows.items():
                measured[label].append(measure())
        seconds = {label: statistics.median(r[0] for r in got) for label, got in measured.items()}
        t_parse = seconds[PARSE]

        def rss(label: str) -> float:
            return statistics.median(r[1] for r in measured[label])

        rss_in_turn = rss(IN_TURN)
        memory = [("per-flow (default network)", rss(DEFAULT), default),
                  ("windowed (default network, window 8)", rss(WINDOWED), window)]
        big_rss = {}
        if big is not None:
            for label, _, model in memory:
                big_rss[label] = run_measured(detect_cmd(big, model, out, threads=args.threads), src)[1]

        # (e)
        one = tmp / "one.csv"
        one_row(flows, one)
        capture = data_dir() / CAPTURE
        inputs = [("one-row CSV", one)]
        try:
            import nfstream  # noqa: F401

            if capture.exists():
                inputs.append(("one-flow capture", capture))
        except ImportError:
            pass
        cold = []
        for name, path in inputs:
            for label, code in (("before", args.before_src), ("after", src)):
                if code is None:
                    continue
                runs = [run_measured(detect_cmd(path, default, tmp / "one.out", fmt="jsonl"), code)
                        for _ in range(args.cold_repeat)]
                cold.append((name, label, statistics.median(r[0] for r in runs), max(r[1] for r in runs)))

        rate = args.rows / t_parse
        print(f"# detect end to end, {args.rows:,} generated flows from {args.sample.name}"
              + (f" (and {big_rows:,} for the memory ratio)" if big_rows else "")
              + f"; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}; --threads {args.threads}; networks trained {args.epochs} epoch(s) on "
              f"{args.train_rows:,} flows; load average {load_start:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - started:,.0f} s in all")
        print()
        print(f"| what (median of {args.repeat}) | rows/s | range | / pyarrow parse |")
        print("|---|---:|---:|---:|")
        for label, got in measured.items():
            rates = sorted(args.rows / r[0] for r in got)
            print(f"| {label} | {args.rows / seconds[label]:,.0f} | {rates[0]:,.0f}-{rates[-1]:,.0f} | "
                  f"{args.rows / seconds[label] / rate:.2f} |")
        print()
        print(f"| peak RSS of detect | {args.rows:,} flows MB (median) | "
              + (f"{big_rows:,} flows MB | ratio |" if big_rows else "")
              )
        print("|---|---:|" + ("---:|---:|" if big_rows else ""))
        print(f"| (b) stages in turn, default network | {rss_in_turn:,.0f} |" + (" | |" if big_rows else ""))
        for label, rss, _ in memory:
            line = f"| (d) {label} | {rss:,.0f} |"
            if big_rows:
                line += f" {big_rss[label]:,.0f} | {big_rss[label] / rss:.2f} |"
            print(line)
        if cold:
            print()
            print(f"| (e) cold start of detect (median of {args.cold_repeat}) | code | wall s | peak RSS MB |")
            print("|---|---|---:|---:|")
            for name, label, seconds, rss in cold:
                print(f"| {name} | {label} | {seconds:.2f} | {rss:,.0f} |")
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()
        else:
            shutil.rmtree(tmp / "one.out", ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
