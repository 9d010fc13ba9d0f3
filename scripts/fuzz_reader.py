#!/usr/bin/env python3
"""Coverage-guided fuzzing of the flow-file reader with atheris, for a given time.

    PYTHONPATH=src python scripts/fuzz_reader.py --seconds 600

Each input becomes a flow file (``tests/fuzz/harness.py``: CSV under the v2
header, the same gzip-compressed, gzip cut short, a whole CSV file, or a
Parquet file) and is read as ``train`` and as ``detect`` read files, with the
invariants checked: no exception other than FlowReadError, one-line messages
that name the file, rows read = accepted + rejected, every accepted value
exact. An input that breaks one is kept in ``tests/fuzz/regressions/``
(libFuzzer's artifact prefix), where ``tests/fuzz/test_regressions.py``
replays it in every test run; the run then stops, so fix it and start again.

The corpus starts from real rows of the shared NF-BoT-IoT-v2 sample (or one
built-in row when the data folder is absent) and grows in a temporary folder,
or in ``--corpus`` to keep it between runs. Needs ``pip install atheris``.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]
REGRESSIONS = REPO / "tests" / "fuzz" / "regressions"


def seeds(folder: Path) -> None:
    """A few inputs of each form the harness builds, from real rows."""
    from tests.fuzz.harness import ROW

    from flowsentinel.paths import data_dir

    sample = data_dir() / "nf-bot-iot-v2" / "NF-BoT-IoT-v2-sample.csv.gz"
    if sample.exists():
        with gzip.open(sample, "rb") as fh:
            header, *rows = [fh.readline() for _ in range(41)]
    else:
        header, rows = None, [ROW + b"\n"] * 40
    body = b"".join(rows)
    for mode in (0, 1, 2):
        (folder / f"seed-{mode}").write_bytes(bytes([mode]) + body)
        (folder / f"seed-{mode}-short").write_bytes(bytes([mode]) + b"".join(rows[:3]))
    if header is not None:
        (folder / "seed-3").write_bytes(bytes([3]) + header + body)
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        table = pacsv.read_csv(pa.py_buffer(header + body))
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, row_group_size=16)
        (folder / "seed-4").write_bytes(bytes([4]) + sink.getvalue().to_pybytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600, help="how long to fuzz")
    parser.add_argument("--corpus", type=Path, help="corpus folder to keep (default: a temporary one)")
    parser.add_argument("--max-len", type=int, default=16384, help="longest input, bytes")
    args = parser.parse_args()
    try:
        import atheris
    except ImportError:
        raise SystemExit("atheris is not installed: pip install atheris") from None

    with atheris.instrument_imports(include=["flowsentinel"]):
        import flowsentinel.io.checks  # noqa: F401
        import flowsentinel.io.inputs  # noqa: F401
        import flowsentinel.io.readers  # noqa: F401
    from tests.fuzz.harness import check_bytes

    work = Path(tempfile.mkdtemp(prefix="fuzz_reader_"))
    corpus = args.corpus or work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    seeds(corpus)
    REGRESSIONS.mkdir(parents=True, exist_ok=True)
    files = work / "files"
    files.mkdir()

    def one_input(data: bytes) -> None:
        for old in files.iterdir():
            if old.is_file():
                old.unlink()
        check_bytes(data, files)

    import logging

    logging.disable(logging.CRITICAL)  # the reader logs every reject; the fuzzer's own output is the record
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", f"-max_len={args.max_len}",
                   f"-artifact_prefix={REGRESSIONS}/", "-timeout=60", "-rss_limit_mb=3072", "-print_final_stats=1"],
                  one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
