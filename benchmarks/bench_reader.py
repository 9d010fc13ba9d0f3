#!/usr/bin/env python3
"""Flow-file reading speed: FlowReader against pyarrow's own parse of the same file, in one run.

Builds files of ``--rows`` rows from the shared NF-BoT-IoT-v2 sample (its rows
repeated in order) in a temporary folder: CSV, gzip CSV and Parquet, each clean
and with ``--bad`` (1%) of its rows damaged (text in a number column, a
negative counter, an empty field, NaN, 2**64, a fraction in a counter, a cut
line; in Parquet: nulls, negative values and NaN). Each row of the table is the
best of ``--repeat`` runs of:

* pyarrow: ``pyarrow.csv.read_csv(path)`` or ``pyarrow.parquet.read_table(path)``
  with their defaults (threads on, types inferred; lines with the wrong
  number of fields skipped): an Arrow table, no checks;
* FlowReader: every chunk of ``FlowReader(path)`` consumed: typed, checked
  pandas DataFrames, rejects written.

    PYTHONPATH=src python benchmarks/bench_reader.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.io.readers import FlowReader, ReadConfig  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402

SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"
# Damage written into a field of a bad CSV row; None cuts the line in half.
CSV_DAMAGE = ["abc", "-5", "", "nan", "18446744073709551616", "1.5", None]


def build_csv(sample: Path, rows: int, bad: float, out: Path, seed: int = 0) -> int:
    """``rows`` rows of the sample, in order and repeated; ``bad`` of them damaged. Returns rows damaged."""
    with gzip.open(sample, "rb") as fh:
        header, *lines = fh.read().splitlines()
    names = header.decode().split(",")
    numeric = [i for i, n in enumerate(names) if n not in ("IPV4_SRC_ADDR", "IPV4_DST_ADDR", "Attack", "Dataset")]
    rng = np.random.default_rng(seed)
    damaged = set(rng.choice(rows, size=int(rows * bad), replace=False).tolist()) if bad else set()
    with open(out, "wb") as fh:
        fh.write(header + b"\n")
        for i in range(rows):
            line = lines[i % len(lines)]
            if i in damaged:
                damage = CSV_DAMAGE[i % len(CSV_DAMAGE)]
                if damage is None:
                    line = line[: len(line) // 2]
                else:
                    fields = line.split(b",")
                    fields[numeric[i % len(numeric)]] = damage.encode()
                    line = b",".join(fields)
            fh.write(line + b"\n")
    return len(damaged)


def build_parquet(csv_path: Path, bad: float, out: Path, seed: int = 0) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(csv_path)
    n = table.num_rows
    rng = np.random.default_rng(seed)
    damaged = np.sort(rng.choice(n, size=int(n * bad), replace=False)) if bad else np.array([], dtype=int)
    if len(damaged):
        numeric = [f.name for f in table.schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
        for k, name in enumerate(numeric):
            rows = damaged[k::len(numeric)]
            if not len(rows):
                continue
            col = table.column(name).combine_chunks()
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            kind = k % 3
            if kind == 0:
                new = pc.if_else(pa.array(mask), pa.scalar(None, col.type), col)
            elif kind == 1:
                new = pc.if_else(pa.array(mask), pa.scalar(-1, col.type), col)
            else:
                col = pc.cast(col, pa.float64())
                new = pc.if_else(pa.array(mask), pa.scalar(float("nan")), col)
            table = table.set_column(table.schema.get_field_index(name), name, new)
    pq.write_table(table, out, row_group_size=200_000)
    return len(damaged)


def peer_read(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).num_rows
    import pyarrow.csv as pacsv

    # Damaged lines would stop pyarrow's parse; skipping them is its own way to read on.
    return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")).num_rows


def reader_read(path: Path, rejects: Path) -> tuple[int, int]:
    reader = FlowReader(path, ReadConfig(rejects_dir=rejects))
    n = sum(len(chunk) for chunk in reader)
    return n, reader.report.n_rejected


def best_of(fns, repeat: int) -> list[tuple[float, object]]:
    """Best time and result of each function; runs alternate so that both see the same machine load."""
    times = [[] for _ in fns]
    results: list = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            results[i] = fn()
            times[i].append(time.perf_counter() - start)
    return [(min(t), r) for t, r in zip(times, results)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--bad", type=float, default=0.01, help="share of damaged rows in the bad files")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row, alternating; the best is reported")
    parser.add_argument("--sample", type=Path, default=data_dir() / SAMPLE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if not args.sample.exists():
        raise SystemExit(f"{args.sample}: sample not found; set FLOWSENTINEL_DATA")

    with tempfile.TemporaryDirectory(prefix="bench_reader_") as tmp:
        tmp = Path(tmp)
        files = []
        for label, share in (("clean", 0.0), ("1% bad", args.bad)):
            tag = "clean" if not share else "bad"
            csv_path = tmp / f"{tag}.csv"
            n_bad = build_csv(args.sample, args.rows, share, csv_path)
            gz_path = tmp / f"{tag}.csv.gz"
            with open(csv_path, "rb") as src, gzip.open(gz_path, "wb", compresslevel=6) as dst:
                while chunk := src.read(1 << 24):
                    dst.write(chunk)
            clean_csv = tmp / "clean.csv"
            pq_path = tmp / f"{tag}.parquet"
            n_bad_pq = build_parquet(clean_csv, share, pq_path)
            files += [("CSV", label, csv_path, n_bad), ("CSV.gz", label, gz_path, n_bad),
                      ("Parquet", label, pq_path, n_bad_pq)]
        print(f"# flow-file reading, {args.rows:,} rows of {args.sample.name}; best of {args.repeat}; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
              f"load average {os.getloadavg()[0]:.1f} at the start")
        print()
        print("| file | rows | size MB | pyarrow rows/s | FlowReader rows/s | FlowReader / pyarrow | rejected |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for fmt, label, path, n_bad in files:
            (t_peer, _), (t_ours, (n_ours, n_rej)) = best_of(
                [lambda: peer_read(path), lambda: reader_read(path, tmp / "rejects")], args.repeat)
            size = path.stat().st_size / 1e6
            if n_ours + n_rej != args.rows:
                raise SystemExit(f"{path}: {n_ours:,} rows accepted + {n_rej:,} rejected != {args.rows:,} rows")
            print(f"| {fmt} {label} | {args.rows:,} | {size:,.0f} | {args.rows / t_peer:,.0f} | "
                  f"{args.rows / t_ours:,.0f} | {t_peer / t_ours:.2f} | {n_rej:,} |")
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
