"""The row rules of the Spark job give the flow-file reader's reasons (no Spark needed: they run on Arrow batches)."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow as pa
import pytest

from flowsentinel.io.readers import ReadConfig, read_flows
from flowsentinel.schema import V1_FEATURES, get_schema
from flowsentinel.spark.rows import check_rows, column_kinds
from flowsentinel.spark.scoring import LineNumbers

HEADER = V1_FEATURES + ["Label", "Attack"]
GOOD = "10.0.0.1,1234,10.0.0.2,80,6,7.0,100,50,2,1,22,0,0,Benign"


def _spoil(column: str, value: str) -> str:
    fields = GOOD.split(",")
    fields[HEADER.index(column)] = value
    return ",".join(fields)


# (line, the reason both readers must give, the column)
CASES = [
    (_spoil("IN_BYTES", "-5"), "negative value", "IN_BYTES"),
    (_spoil("OUT_BYTES", "nan"), "NaN", "OUT_BYTES"),
    (_spoil("IN_PKTS", "  "), "missing value", "IN_PKTS"),
    (_spoil("TCP_FLAGS", "x7"), "not a number", "TCP_FLAGS"),
    (_spoil("L7_PROTO", "-inf"), "infinity", "L7_PROTO"),
    (_spoil("L7_PROTO", ""), "missing value", "L7_PROTO"),
    (_spoil("Label", "3"), "label not 0 or 1", "Label"),
    (_spoil("Attack", ""), "missing value", "Attack"),
    # the first bad column in file order is the one reported
    (_spoil("L4_SRC_PORT", "-1").replace(",100,", ",-100,"), "negative value", "L4_SRC_PORT"),
]


def _as_strings(lines: list[str]) -> pa.RecordBatch:
    rows = list(csv.reader(lines))
    return pa.record_batch({c: pa.array([r[j] for r in rows], pa.string()) for j, c in enumerate(HEADER)})


def test_reasons_are_the_readers(tmp_path):
    lines = [GOOD, *(line for line, _, _ in CASES), GOOD]
    path = tmp_path / "flows.csv"
    path.write_text("\n".join([",".join(HEADER), *lines]) + "\n")
    frame, report = read_flows(path, ReadConfig(rejects_dir=tmp_path))
    with open(report.rejects_path, newline="") as fh:
        reader_rejects = [(int(r["line"]), r["column"], r["reason"]) for r in csv.DictReader(fh)]
    checked = check_rows(_as_strings(lines), column_kinds(get_schema("v1"), HEADER, require_labels=True))
    ours = [(int(i) + 2, c, r) for i, c, r in zip(checked.bad, checked.columns, checked.reasons)]
    assert ours == sorted(reader_rejects) == [(i + 3, col, why) for i, (_, why, col) in enumerate(CASES)]
    assert checked.frame.shape == frame.shape
    for col in frame.columns:
        assert checked.frame[col].tolist() == frame[col].tolist(), col
        assert checked.frame[col].dtype.kind == frame[col].dtype.kind or frame[col].dtype.kind in "OT", col
    assert checked.texts[0] == CASES[0][0]


def test_counters_are_exact_integers_and_fractions_or_overflow_are_rejected():
    kinds = {"IN_BYTES": "int"}
    big = str((1 << 63) - 1)
    checked = check_rows(pa.record_batch({"IN_BYTES": [big, "9223372036854775808", "1.5", "2.0", "1e3"]}), kinds)
    assert checked.frame["IN_BYTES"].tolist() == [(1 << 63) - 1, 2, 1000]
    assert checked.reasons == ["value out of range", "not an integer"]


def test_typed_columns_of_parquet_files():
    kinds = {"IN_BYTES": "int", "L7_PROTO": "float", "Label": "label"}
    batch = pa.record_batch({
        "IN_BYTES": pa.array([1, None, -3, 4, 5], pa.int64()),
        "L7_PROTO": pa.array([7.0, 1.0, 1.0, float("nan"), 1.0]),
        "Label": pa.array([0, 1, 1, 1, 2], pa.int64()),
    })
    checked = check_rows(batch, kinds)
    assert checked.bad.tolist() == [1, 2, 3, 4]
    assert checked.reasons == ["missing value", "negative value", "NaN", "label not 0 or 1"]
    assert checked.frame["IN_BYTES"].dtype == np.int64 and checked.frame["IN_BYTES"].tolist() == [1]
    floats = check_rows(pa.record_batch({"IN_BYTES": pa.array([2.0, 2.5, 1e19])}), {"IN_BYTES": "int"})
    assert floats.frame["IN_BYTES"].tolist() == [2] and floats.reasons == ["not an integer", "value out of range"]


def test_lines_the_parser_could_not_split():
    batch = _as_strings([GOOD, GOOD]).append_column("_corrupt", pa.array([None, "1,2,3"], pa.string()))
    checked = check_rows(batch, column_kinds(get_schema("v1"), HEADER), "_corrupt", len(HEADER))
    assert checked.bad.tolist() == [1]
    assert (checked.reasons, checked.values, checked.texts) == (["truncated line"], ["3 of 14 fields"], ["1,2,3"])


def test_line_numbers_continue_across_splits_and_batches():
    lines = LineNumbers({("f", 0): 0, ("f", 500): 3})
    files = np.array(["f", "f", "f"], dtype=object)
    assert lines.csv(files, np.array([0, 0, 0])).tolist() == [2, 3, 4]
    assert lines.csv(files[:1], np.array([500])).tolist() == [5]
    assert lines.csv(files[:2], np.array([500, 500])).tolist() == [6, 7]
    with pytest.raises(Exception, match="was not there when its rows were counted"):
        lines.csv(files[:1], np.array([900]))
