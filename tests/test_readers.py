"""The flow readers on good and malformed files: every bad case is named and kept aside."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pandas as pd
import pytest

from flowsentinel.io.readers import FlowReader, FlowReadError, ReadConfig, read_flows, read_header
from flowsentinel.schema import V1_FEATURES, V2_FEATURES, V3_FEATURES, SchemaError, detect_schema

V1_HEADER = V1_FEATURES + ["Label", "Attack"]
GOOD_V1 = ["10.0.0.1", "1234", "10.0.0.2", "80", "6", "7.0", "100", "50", "2", "1", "22", "10", "0", "Benign"]


def write(path, header, rows, opener=open):
    with opener(path, "wt", newline="") as fh:
        fh.write(",".join(header) + "\n")
        for row in rows:
            fh.write((row if isinstance(row, str) else ",".join(row)) + "\n")
    return path


def with_value(column, value):
    row = list(GOOD_V1)
    row[V1_HEADER.index(column)] = value
    return row


def rejects_rows(report):
    with open(report.rejects_path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("schema,features", [("v1", V1_FEATURES), ("v2", V2_FEATURES), ("v3", V3_FEATURES)])
def test_schema_recognised_from_header(schema, features):
    assert detect_schema(features + ["Label", "Attack"]).name == schema
    # column order does not matter
    assert detect_schema(list(reversed(features))).name == schema


def test_header_that_is_no_netflow_schema_names_the_gap():
    with pytest.raises(SchemaError, match="missing 1 column.*FLOW_DURATION_MILLISECONDS"):
        detect_schema([c for c in V1_FEATURES if c != "FLOW_DURATION_MILLISECONDS"])


def test_good_v1_file_reads_typed(tmp_path):
    path = write(tmp_path / "v1.csv", V1_HEADER, [GOOD_V1, GOOD_V1])
    frame, report = read_flows(path)
    assert report.schema == "v1" and report.n_accepted == 2 and report.n_rejected == 0
    assert frame["IN_BYTES"].dtype == np.int64
    assert frame["L7_PROTO"].dtype == np.float64
    assert frame["IPV4_SRC_ADDR"].tolist() == ["10.0.0.1", "10.0.0.1"]
    assert report.rejects_path is None


@pytest.mark.parametrize(
    "row,column,reason",
    [
        (with_value("IN_BYTES", "abc"), "IN_BYTES", "not a number"),
        (with_value("OUT_PKTS", "nan"), "OUT_PKTS", "NaN"),
        (with_value("OUT_BYTES", "inf"), "OUT_BYTES", "infinity"),
        (with_value("IN_PKTS", "-3"), "IN_PKTS", "negative value"),
        (with_value("TCP_FLAGS", ""), "TCP_FLAGS", "missing value"),
        (with_value("Label", "7"), "Label", "label not 0 or 1"),
        (with_value("Attack", ""), "Attack", "missing value"),
    ],
)
def test_bad_value_goes_to_rejects_with_line_column_reason(tmp_path, row, column, reason):
    path = write(tmp_path / "bad.csv", V1_HEADER, [GOOD_V1, row, GOOD_V1])
    frame, report = read_flows(path, ReadConfig(rejects_dir=tmp_path / "rej"))
    assert len(frame) == 2
    assert report.n_rejected == 1 and report.reasons == {reason: 1}
    (rej,) = rejects_rows(report)
    assert rej["line"] == "3" and rej["column"] == column and rej["reason"] == reason
    assert rej["source"] == str(path)
    assert "rejected" in report.summary()


def test_truncated_and_overlong_lines_are_rejected_not_dropped(tmp_path):
    rows = [GOOD_V1, ",".join(GOOD_V1[:5]), GOOD_V1, ",".join(GOOD_V1 + ["extra"]), with_value("IN_BYTES", "x")]
    path = write(tmp_path / "t.csv", V1_HEADER, rows)
    frame, report = read_flows(path)
    assert len(frame) == 2
    assert report.reasons == {"truncated line": 1, "too many fields": 1, "not a number": 1}
    lines = {r["reason"]: r["line"] for r in rejects_rows(report)}
    # Line numbers stay right after structurally bad lines were skipped.
    assert lines == {"truncated line": "3", "too many fields": "5", "not a number": "6"}
    assert report.n_rows == 5


def test_missing_column_is_an_error_naming_file_and_column(tmp_path):
    header = [c for c in V1_HEADER if c != "IN_PKTS"]
    row = [v for c, v in zip(V1_HEADER, GOOD_V1) if c != "IN_PKTS"]
    path = write(tmp_path / "m.csv", header, [row])
    with pytest.raises(FlowReadError, match=r"m\.csv.*IN_PKTS"):
        FlowReader(path)


def test_missing_labels_only_matter_when_required(tmp_path):
    path = write(tmp_path / "nolabel.csv", V1_FEATURES, [GOOD_V1[:-2]])
    with pytest.raises(FlowReadError, match="Label"):
        FlowReader(path)
    frame, _ = read_flows(path, ReadConfig(require_labels=False))
    assert len(frame) == 1


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(FlowReadError, match="empty file"):
        FlowReader(tmp_path / "empty.csv")
    with pytest.raises(FlowReadError, match="no such file"):
        FlowReader(tmp_path / "absent.csv")
    with pytest.raises(FlowReadError, match="unknown flow file type"):
        read_header(write(tmp_path / "x.json", V1_HEADER, []))


def test_gzip_and_parquet_read_the_same_as_csv(tmp_path):
    rows = [with_value("IN_BYTES", str(i)) for i in range(50)]
    plain, _ = read_flows(write(tmp_path / "a.csv", V1_HEADER, rows))
    zipped, _ = read_flows(write(tmp_path / "a.csv.gz", V1_HEADER, rows, gzip.open))
    plain.to_parquet(tmp_path / "a.parquet")
    parquet, _ = read_flows(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(plain, zipped)
    pd.testing.assert_frame_equal(plain.astype(object), parquet.astype(object))


def test_parquet_with_bad_values_rejects_them(tmp_path):
    frame, _ = read_flows(write(tmp_path / "a.csv", V1_HEADER, [GOOD_V1] * 3))
    frame = frame.astype({"IN_BYTES": "float64"})
    frame.loc[1, "IN_BYTES"] = np.inf
    frame.to_parquet(tmp_path / "b.parquet")
    out, report = read_flows(tmp_path / "b.parquet")
    assert len(out) == 2 and report.reasons == {"infinity": 1}


def test_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path):
    # Big enough that the cut falls after the reader's first block.
    rng = np.random.default_rng(0)
    rows = [with_value("IN_BYTES", str(v)) for v in rng.integers(0, 10**9, 150_000)]
    full = write(tmp_path / "full.csv.gz", V1_HEADER, rows, gzip.open)
    data = full.read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    # By default a file cut short is an error, raised after the rows before the cut.
    reader = FlowReader(cut)
    chunks = []
    with pytest.raises(FlowReadError, match=r"cut\.csv\.gz: unreadable from line [0-9,]+ on .*cut short"):
        for chunk in reader:
            chunks.append(chunk)
    assert reader.report.stopped and not reader.report.complete
    assert reader.report.n_rows == reader.report.n_accepted + reader.report.n_rejected
    # Asked for, the rows before the cut come without the error, and the report says so.
    frame, report = read_flows(cut, ReadConfig(allow_partial=True))
    assert report.reasons == {"cut short": 1} and not report.complete and "cut short" in report.stopped
    assert 0 < len(frame) < 150_000 and len(frame) == sum(map(len, chunks))
    # What was read is exact: the first rows, in order.
    assert frame["IN_BYTES"].tolist() == [int(r[6]) for r in rows[: len(frame)]]
    small = tmp_path / "small.csv.gz"
    small.write_bytes(write(tmp_path / "s.csv.gz", V1_HEADER, rows[:10], gzip.open).read_bytes()[:-12])
    with pytest.raises(FlowReadError, match="cut short"):
        read_flows(small)


def test_chunks_cover_the_file_exactly_once(tmp_path):
    rows = [with_value("IN_BYTES", str(i)) for i in range(1000)]
    rows[500] = with_value("IN_BYTES", "-1")
    path = write(tmp_path / "c.csv", V1_HEADER, rows)
    reader = FlowReader(path, ReadConfig(chunk_rows=128, line_column="_line"))
    chunks = list(reader)
    assert all(len(c) <= 128 for c in chunks)
    frame = pd.concat(chunks, ignore_index=True)
    assert len(frame) == 999 and reader.report.n_rejected == 1
    assert frame["IN_BYTES"].tolist() == [i for i in range(1000) if i != 500]
    assert frame["_line"].tolist() == [i + 2 for i in range(1000) if i != 500]


def test_forced_narrower_schema_reads_v1_columns_from_v2(sample_slice, tmp_path):
    frame, report = read_flows(sample_slice, ReadConfig(schema="v1", rejects_dir=tmp_path))
    assert report.schema == "v1"
    assert set(V1_FEATURES) <= set(frame.columns)
    assert "TCP_WIN_MAX_IN" not in frame.columns


def test_real_sample_slice_reads_clean(sample_frame):
    assert len(sample_frame) == 6000
    assert set(sample_frame["Attack"]) <= {"Benign", "DDoS", "DoS", "Reconnaissance", "Theft"}
    assert (sample_frame["FLOW_DURATION_MILLISECONDS"] >= 0).all()


def test_block_cuts_fall_after_the_last_line_end_outside_quotes():
    import random

    from flowsentinel.io.inputs import _safe_cut

    def reference(buf: bytes) -> int:
        inside, cut = False, 0
        for i, byte in enumerate(buf):
            if byte == 0x22:
                inside = not inside
            elif byte == 0x0A and not inside:
                cut = i + 1
        return cut or (buf.rfind(b"\n") + 1)  # unbalanced quotes everywhere: the last line end

    rng = random.Random(0)
    pieces = [b'"', b"\n", b"a", b",", b'""']
    buffers = [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    buffers.append(b'1,"a\nb",2\n' * 50 + b'"stray\n' + b"x,y\n" * 200)  # more line ends than the walk back tries
    for buf in buffers:
        assert _safe_cut(buf) == reference(buf), buf
