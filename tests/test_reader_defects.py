"""The flow-file defects of the 2026-12-01 reliability probe (issue 14), each on the input that showed it.

Files are built in the test from real rows of the shared NF-BoT-IoT-v2 sample
(or small hand-written v1 rows where the sample is not needed), so that every
count below is checked against what the file holds, never typed in.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flowsentinel.io.readers import FlowReader, FlowReadError, ReadConfig, read_flows, read_header, rejects_name
from flowsentinel.paths import data_dir
from flowsentinel.schema import ADDRESS_COLUMNS, V1_FEATURES

REPO = Path(__file__).resolve().parents[1]
V1_HEADER = V1_FEATURES + ["Label", "Attack"]
GOOD_V1 = ["10.0.0.1", "1234", "10.0.0.2", "80", "6", "7.0", "100", "50", "2", "1", "22", "10", "0", "Benign"]


@pytest.fixture(scope="module")
def sample_lines(sample_path) -> list[bytes]:
    """Header and the first 60,000 rows of the real sample, as the bytes of their lines."""
    with gzip.open(sample_path, "rb") as fh:
        return [fh.readline().rstrip(b"\n") for _ in range(60_001)]


def write_lines(path: Path, lines: list[bytes], opener=open) -> Path:
    with opener(path, "wb") as fh:
        fh.write(b"\n".join(lines) + b"\n")
    return path


def v1_file(path: Path, rows: list[list[str]], header: list[str] = V1_HEADER) -> Path:
    return write_lines(path, [",".join(header).encode()] + [",".join(r).encode() for r in rows])


def set_field(line: bytes, header: bytes, column: str, value: bytes) -> bytes:
    fields = line.split(b",")
    fields[header.split(b",").index(column.encode())] = value
    return b",".join(fields)


def balanced(report) -> bool:
    return report.n_rows == report.n_accepted + report.n_rejected


def rejects_of(report) -> list[dict]:
    with open(report.rejects_path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ---- D2: a read error part-way through a file ---------------------------------------------------


def test_d2_one_latin1_byte_after_the_first_block_costs_one_row(sample_lines, tmp_path):
    header, rows = sample_lines[0], list(sample_lines[1:])
    rows[40_001] = set_field(rows[40_001], header, "Attack", "D\xe9S".encode("latin-1"))
    path = write_lines(tmp_path / "latin1_big.csv", [header] + rows)
    assert path.stat().st_size > 4 << 20  # the byte lies beyond the first block
    frame, report = read_flows(path)
    assert report.n_rows == len(rows) and balanced(report) and report.complete
    assert report.reasons == {"invalid UTF-8": 1}
    (rej,) = rejects_of(report)
    assert rej["line"] == str(40_001 + 2) and rej["column"] == "Attack"
    # Detection does not need Attack: the flow keeps its place, the bad byte is counted.
    frame, report = read_flows(path, ReadConfig(require_labels=False))
    assert len(frame) == len(rows) and report.n_rejected == 0
    assert report.warnings == {"Attack: invalid UTF-8": 1}


def test_d2_sample_cut_at_half_keeps_every_row_before_the_cut(sample_path, tmp_path):
    data = sample_path.read_bytes()
    cut = tmp_path / "sample_half.csv.gz"
    cut.write_bytes(data[: len(data) // 2])
    # What a decompressor recovers from the half file: the reference count.
    text = zlib.decompressobj(wbits=31).decompress(cut.read_bytes())
    complete_rows = text.count(b"\n") - 1
    reader = FlowReader(cut, ReadConfig(require_labels=False))
    seen = 0
    with pytest.raises(FlowReadError, match=r"sample_half\.csv\.gz: unreadable from line .*compressed byte.*cut short"):
        for chunk in reader:
            seen += len(chunk)
    report = reader.report
    assert seen == report.n_accepted == complete_rows
    assert report.n_rows == complete_rows + 1 and report.reasons == {"cut short": 1} and balanced(report)
    assert f"{report.n_rows:,} rows came through" in report.stopped
    frame, report = read_flows(cut, ReadConfig(allow_partial=True))
    assert len(frame) == complete_rows and not report.complete and report.stopped


def test_d2_damaged_gzip_stops_with_line_and_byte(tmp_path):
    rows = [",".join(GOOD_V1[:6] + [str(i)] + GOOD_V1[7:]) for i in range(60_000)]
    body = (",".join(V1_HEADER) + "\n" + "\n".join(rows) + "\n").encode()
    packed = bytearray(gzip.compress(body))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "damaged.csv.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(FlowReadError, match=r"damaged\.csv\.gz: unreadable from line [0-9,]+ on \(compressed byte"):
        read_flows(path)
    frame, report = read_flows(path, ReadConfig(allow_partial=True))
    assert balanced(report) and report.stopped and "damaged" in report.stopped
    # Rows before the damage are the file's rows; rows the damage garbled are rejected, not accepted as values.
    assert len(frame) > 0 and set(frame["IN_BYTES"]) <= set(range(60_000))


def test_d2_trailing_garbage_after_gzip_is_not_silent(tmp_path):
    path = tmp_path / "tail.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([",".join(V1_HEADER), ",".join(GOOD_V1)]) + "\n").encode()) + b"junk")
    with pytest.raises(FlowReadError, match="unexpected data follows the end of the gzip stream"):
        read_flows(path)
    # Concatenated members and zero padding are whole gzip files.
    member = gzip.compress((",".join(GOOD_V1) + "\n").encode())
    path.write_bytes(gzip.compress((",".join(V1_HEADER) + "\n").encode()) + member + member + b"\0" * 64)
    frame, report = read_flows(path)
    assert len(frame) == 2 and report.complete


# ---- D4: integers at and beyond 2**63 ----------------------------------------------------------


@pytest.mark.parametrize("value", ["18446744073709551616", "18446744073709551615", "9223372036854775808",
                                   "1e30", "1e300", "1e400"])
def test_d4_values_beyond_int64_are_rejected_not_wrapped(tmp_path, value):
    path = v1_file(tmp_path / "huge.csv", [GOOD_V1, GOOD_V1[:3] + [value] + GOOD_V1[4:], GOOD_V1])
    frame, report = read_flows(path)
    assert len(frame) == 2 and report.reasons == {"value out of range": 1}
    assert (frame["L4_DST_PORT"] == 80).all()
    (rej,) = rejects_of(report)
    assert rej["line"] == "3" and rej["column"] == "L4_DST_PORT" and rej["value"] == value


@pytest.mark.parametrize("value", ["0x10", "0X7fffffffffffffff", "1_000", "\u0661"])
def test_hexadecimal_and_other_spellings_are_not_numbers(tmp_path, value):
    # Arrow's own int64 parse would read "0x10" as 16.
    frame, report = read_flows(v1_file(tmp_path / "hex.csv", [GOOD_V1[:1] + [value] + GOOD_V1[2:], GOOD_V1]))
    assert len(frame) == 1 and report.reasons == {"not a number": 1}


@pytest.mark.parametrize("value,exact", [
    ("9223372036854775807", 2**63 - 1), ("9007199254740993", 2**53 + 1), ("1e18", 10**18),
    ("4294967295.0", 2**32 - 1), ("+5", 5), (" 7 ", 7), ("0005", 5), ("12345678901234567.0", 12345678901234567),
])
def test_d4_large_and_unusual_integers_are_kept_exactly(tmp_path, value, exact):
    # Alone and among plain integers (the two ways a block converts a column).
    rows = [GOOD_V1[:6] + [value] + GOOD_V1[7:]] + [GOOD_V1] * 100
    frame, report = read_flows(v1_file(tmp_path / "big.csv", rows))
    assert report.n_rejected == 0 and frame["IN_BYTES"].dtype == np.int64
    assert int(frame["IN_BYTES"].iloc[0]) == exact and (frame["IN_BYTES"].iloc[1:] == 100).all()
    frame, report = read_flows(v1_file(tmp_path / "one.csv", rows[:1]))
    assert int(frame["IN_BYTES"].iloc[0]) == exact


def test_d4_parquet_uint64_and_huge_floats_are_rejected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame, _ = read_flows(v1_file(tmp_path / "a.csv", [GOOD_V1] * 4))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    big = pa.array([1, 2**63, 2**64 - 1, 3], pa.uint64())
    table = table.set_column(table.schema.get_field_index("IN_BYTES"), "IN_BYTES", big)
    table = table.set_column(table.schema.get_field_index("OUT_BYTES"), "OUT_BYTES",
                             pa.array([1e30, 5.0, 5.0, 2.0**63]))
    pq.write_table(table, tmp_path / "u.parquet")
    out, report = read_flows(tmp_path / "u.parquet")
    assert out["IN_BYTES"].tolist() == [] and report.reasons == {"value out of range": 4}
    assert balanced(report)


# ---- D5: inputs that are not regular files -------------------------------------------------------


def test_d5_fifo_without_writer_is_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(FlowReadError, match=r"fifo\.csv: is a FIFO \(named pipe\), not a regular file"):
        FlowReader(fifo)
    with pytest.raises(FlowReadError, match="FIFO"):
        read_header(fifo)


def test_d5_csv_name_for_dev_zero_is_refused_at_once(tmp_path):
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises(FlowReadError, match=r"zero\.csv: is a character device \(it points to /dev/zero\)"):
        FlowReader(link)


def test_d5_one_line_without_newline_is_refused_in_one_line(tmp_path):
    path = tmp_path / "no_newline.csv"
    with open(path, "wb") as fh:
        for _ in range(50):
            fh.write(b"A" * (1 << 20))
    with pytest.raises(FlowReadError, match="first line is longer than") as err:
        FlowReader(path)
    assert "\n" not in str(err.value)


def test_d5_a_body_line_longer_than_a_block_is_rejected_and_reading_goes_on(tmp_path):
    long = ",".join(GOOD_V1[:-1] + ["x" * 300_000])
    path = v1_file(tmp_path / "long.csv", [GOOD_V1, long.split(","), GOOD_V1])
    frame, report = read_flows(path, ReadConfig(block_bytes=1 << 16))
    assert len(frame) == 2 and report.reasons == {"line too long": 1} and balanced(report)
    (lost,) = report.lost
    assert lost["line"] == 3 and lost["end"] - lost["start"] == len(long) + 1
    (rej,) = rejects_of(report)
    assert rej["line"] == "3" and len(rej["row"]) < 1000


def test_d5_directory_is_refused(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(FlowReadError, match=r"dir\.csv: is a directory"):
        FlowReader(tmp_path / "dir.csv")


# ---- D6: files without address columns ----------------------------------------------------------


def test_d6_cic_ids2018_without_addresses_is_read(tmp_path):
    path = data_dir() / "nf-cse-cic-ids2018-v2/NF-CSE-CIC-IDS2018-v2-sample.csv.gz"
    if not path.exists():
        pytest.skip(f"NF-CSE-CIC-IDS2018-v2 sample not found at {path}; set FLOWSENTINEL_DATA")
    reader = FlowReader(path, ReadConfig(rejects_dir=tmp_path))
    frame = pd.concat(list(reader), ignore_index=True)
    with gzip.open(path, "rt") as fh:
        rows = sum(1 for _ in fh) - 1
    assert reader.schema.name == "v2" and len(frame) == rows and reader.report.n_rejected == 0
    assert not set(ADDRESS_COLUMNS) & set(frame.columns)


def test_d6_missing_required_column_is_still_an_error(tmp_path):
    header = [c for c in V1_HEADER if c not in ADDRESS_COLUMNS + ("IN_BYTES",)]
    row = [v for c, v in zip(V1_HEADER, GOOD_V1) if c in header]
    with pytest.raises(FlowReadError, match="IN_BYTES"):
        FlowReader(v1_file(tmp_path / "m.csv", [row], header))


# ---- D9: rejects beside a read-only input ------------------------------------------------------


def test_d9_explicit_rejects_location_that_cannot_be_written_fails_before_reading(tmp_path):
    path = v1_file(tmp_path / "a.csv", [GOOD_V1])
    (tmp_path / "file").write_text("x")
    with pytest.raises(FlowReadError, match="rejects file cannot be written there"):
        FlowReader(path, ReadConfig(rejects_dir=tmp_path / "file" / "sub"))


def test_d9_read_only_input_folder_falls_back_to_the_state_folder(tmp_path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a read-only folder")
    ro, state = tmp_path / "ro", tmp_path / "state"
    ro.mkdir()
    v1_file(ro / "nan.csv", [GOOD_V1, GOOD_V1[:7] + ["nan"] + GOOD_V1[8:], GOOD_V1])
    script = (
        "import json,sys; from flowsentinel.io.readers import read_flows; "
        "f, r = read_flows(sys.argv[1]); print(json.dumps([len(f), r.n_rejected, r.rejects_path]))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "XDG_STATE_HOME": str(state)}
    mount = f"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && "
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount + f"touch {ro}/probe"], capture_output=True, text=True)
    if "Read-only" not in probe.stderr:
        pytest.skip(f"cannot mount a read-only folder here: {probe.stderr.strip()}")
    done = subprocess.run(["unshare", "-m", "sh", "-c", mount + f'"{sys.executable}" -c "{script}" {ro}/nan.csv'],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    n_flows, n_rejected, where = __import__("json").loads(done.stdout)
    assert (n_flows, n_rejected) == (2, 1)
    assert Path(where).parent == state / "flowsentinel" / "rejects" and Path(where).exists()
    assert "not writable" in done.stderr


# ---- D10, D11: encodings -----------------------------------------------------------------------


def test_d10_utf8_byte_order_mark_is_read_like_the_plain_file(sample_lines, tmp_path):
    lines = sample_lines[:101]
    plain, _ = read_flows(write_lines(tmp_path / "plain.csv", lines))
    bom, report = read_flows(write_lines(tmp_path / "bom.csv", [b"\xef\xbb\xbf" + lines[0]] + lines[1:]))
    assert report.n_rejected == 0
    pd.testing.assert_frame_equal(plain, bom)


def test_d11_one_invalid_byte_in_a_small_file_rejects_one_row(sample_lines, tmp_path):
    header, rows = sample_lines[0], list(sample_lines[1:1001])
    rows[501] = set_field(rows[501], header, "IPV4_SRC_ADDR", b"10.0.0.\xff")
    rows[700] = set_field(rows[700], header, "Attack", b"D\xe9S")
    path = write_lines(tmp_path / "latin1.csv", [header] + rows)
    frame, report = read_flows(path)
    assert len(frame) == 998 and report.reasons == {"invalid UTF-8": 2} and balanced(report)
    assert [r["line"] for r in rejects_of(report)] == ["503", "702"]
    # Addresses are features: a bad one rejects the row whatever the labels.
    frame, report = read_flows(path, ReadConfig(require_labels=False))
    assert len(frame) == 999 and report.reasons == {"invalid UTF-8": 1}


def test_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes((",".join(V1_HEADER) + "\n").encode("utf-16"))
    with pytest.raises(FlowReadError, match="UTF-16"):
        FlowReader(path)


# ---- D13: labels that detection does not use ---------------------------------------------------


def test_d13_bad_labels_do_not_cost_a_flow_its_score(tmp_path):
    rows = [GOOD_V1, GOOD_V1[:-2] + ["2", "DoS"], GOOD_V1[:-2] + ["yes", "DoS"], GOOD_V1[:-1] + [""]]
    path = v1_file(tmp_path / "bad_label.csv", rows)
    frame, report = read_flows(path, ReadConfig(require_labels=False))
    assert len(frame) == 4 and report.n_rejected == 0
    assert frame["Label"].tolist()[0] == 0 and frame["Label"].isna().tolist() == [False, True, True, False]
    assert frame["Attack"].tolist() == ["Benign", "DoS", "DoS", ""]
    assert report.warnings == {"Label: label not 0 or 1": 1, "Label: not a number": 1}
    # Training needs them: the same rows are rejected there.
    frame, report = read_flows(path)
    assert len(frame) == 1 and report.reasons == {"label not 0 or 1": 1, "not a number": 1, "missing value": 1}


def test_d13_float_labels_in_parquet(tmp_path):
    frame, _ = read_flows(v1_file(tmp_path / "a.csv", [GOOD_V1] * 3))
    frame["Label"] = [0.0, 1.0, 0.5]
    frame.to_parquet(tmp_path / "f.parquet")
    out, report = read_flows(tmp_path / "f.parquet", ReadConfig(require_labels=False))
    assert len(out) == 3 and out["Label"].isna().tolist() == [False, False, True]
    out, report = read_flows(tmp_path / "f.parquet")
    assert out["Label"].tolist() == [0, 1] and report.reasons == {"label not 0 or 1": 1}


# ---- D14: types and headers --------------------------------------------------------------------


@pytest.mark.parametrize("column,values,says", [
    ("PROTOCOL", [True, False, True], "PROTOCOL: it holds true/false values"),
    ("IN_BYTES", pd.to_datetime(["2024-01-01"] * 3), "IN_BYTES: it holds timestamp"),
])
def test_d14_parquet_columns_of_the_wrong_type_are_refused(tmp_path, column, values, says):
    frame, _ = read_flows(v1_file(tmp_path / "a.csv", [GOOD_V1] * 3))
    frame[column] = values
    frame.to_parquet(tmp_path / "w.parquet")
    with pytest.raises(FlowReadError, match=rf"w\.parquet: column {says}"):
        FlowReader(tmp_path / "w.parquet")


def test_d14_header_with_spaces_after_commas_reads_like_the_plain_file(sample_lines, tmp_path):
    lines = sample_lines[:101]
    plain, _ = read_flows(write_lines(tmp_path / "plain.csv", lines))
    spaced, report = read_flows(write_lines(tmp_path / "hs.csv", [lines[0].replace(b",", b", ")] + lines[1:]))
    assert report.n_rejected == 0
    pd.testing.assert_frame_equal(plain, spaced)
    # Spaces after every comma of every line: the values are trimmed too.
    all_spaced, report = read_flows(write_lines(tmp_path / "all.csv", [line.replace(b",", b", ") for line in lines]))
    pd.testing.assert_frame_equal(plain, all_spaced)


def test_d14_duplicate_column_names_are_refused(tmp_path):
    path = v1_file(tmp_path / "dup.csv", [GOOD_V1 + ["5"]], V1_HEADER + ["IN_BYTES"])
    with pytest.raises(FlowReadError, match=r"dup\.csv: column name\(s\) appear more than once: IN_BYTES \(columns 7 and 15\)"):
        FlowReader(path)


# ---- D15: messages that name the file ------------------------------------------------------------


def test_d15_corrupt_parquet_names_the_file(tmp_path):
    frame, _ = read_flows(v1_file(tmp_path / "a.csv", [GOOD_V1] * 3))
    frame.to_parquet(tmp_path / "c.parquet")
    data = (tmp_path / "c.parquet").read_bytes()
    (tmp_path / "c.parquet").write_bytes(data[:4] + b"\0" * 64 + data[68:-12] + b"\0" * 8 + data[-4:])
    with pytest.raises(FlowReadError, match=r"c\.parquet: cannot read as Parquet"):
        read_flows(tmp_path / "c.parquet")
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(FlowReadError, match=r"cut\.parquet"):
        read_flows(tmp_path / "cut.parquet")


def test_d15_csv_named_parquet_and_parquet_named_csv(tmp_path):
    csv_path = v1_file(tmp_path / "a.csv", [GOOD_V1])
    shutil.copy(csv_path, tmp_path / "text.parquet")
    with pytest.raises(FlowReadError, match=r"text\.parquet: not a Parquet file; it is text: if it is CSV, name it \.csv"):
        FlowReader(tmp_path / "text.parquet")
    frame, _ = read_flows(csv_path)
    frame.to_parquet(tmp_path / "real.csv")
    with pytest.raises(FlowReadError, match=r"real\.csv: is a Parquet file, not CSV text: name it \.parquet"):
        FlowReader(tmp_path / "real.csv")


def test_d15_gzip_content_named_csv_is_read(tmp_path):
    plain = v1_file(tmp_path / "a.csv", [GOOD_V1] * 3)
    (tmp_path / "z.csv").write_bytes(gzip.compress(plain.read_bytes()))
    frame, report = read_flows(tmp_path / "z.csv")
    pd.testing.assert_frame_equal(frame, read_flows(plain)[0])


# ---- D16: rejects files ------------------------------------------------------------------------


def test_d16_stale_rejects_file_is_removed_by_a_clean_run(tmp_path):
    path = v1_file(tmp_path / "stale.csv", [GOOD_V1, GOOD_V1[:6] + ["-1"] + GOOD_V1[7:]])
    _, report = read_flows(path)
    assert Path(report.rejects_path).exists()
    v1_file(path, [GOOD_V1, GOOD_V1])
    _, report = read_flows(path)
    assert report.rejects_path is None and not (tmp_path / "stale.rejects.csv").exists()


def test_d16_csv_and_parquet_of_one_name_get_their_own_rejects(tmp_path):
    bad = GOOD_V1[:6] + ["-1"] + GOOD_V1[7:]
    _, csv_report = read_flows(v1_file(tmp_path / "flows.csv", [GOOD_V1, bad]))
    frame, _ = read_flows(v1_file(tmp_path / "ok.csv", [GOOD_V1] * 2))
    frame["IN_BYTES"] = [-1, 5]
    frame.to_parquet(tmp_path / "flows.parquet")
    _, pq_report = read_flows(tmp_path / "flows.parquet")
    assert csv_report.rejects_path != pq_report.rejects_path
    assert Path(csv_report.rejects_path).exists() and Path(pq_report.rejects_path).exists()
    assert rejects_name("flows.csv") == "flows.rejects.csv"


def test_d16_a_foreign_file_where_rejects_go_is_never_overwritten(tmp_path):
    path = v1_file(tmp_path / "x.csv", [GOOD_V1])
    (tmp_path / "x.rejects.csv").write_text("my notes\n")
    with pytest.raises(FlowReadError, match=r"x\.rejects\.csv: exists and is not a rejects file"):
        FlowReader(path)
    assert (tmp_path / "x.rejects.csv").read_text() == "my notes\n"


# ---- line numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_line_numbers_stay_right_with_blank_lines_and_quotes(tmp_path, eol):
    good = ",".join(GOOD_V1).encode()
    quoted = b'"10.0.0.1",1234,10.0.0.2,80,6,7.0,100,50,2,1,22,10,0,"Be\nnign"'
    bad = good.replace(b",100,", b",-4,")
    lines = [",".join(V1_HEADER).encode(), good, b"", quoted, good, b"", b"", bad, good]
    path = tmp_path / "lines.csv"
    path.write_bytes(eol.join(lines) + eol)
    frame, report = read_flows(path, ReadConfig(line_column="_line"))
    # The quoted row spans lines 4-5; the bad row is line 9.
    assert frame["_line"].tolist() == [2, 4, 6, 10]
    assert [r["line"] for r in rejects_of(report)] == ["9"] and balanced(report)
    assert frame["Attack"].tolist()[1] == "Be\nnign"


def test_a_carriage_return_on_its_own_keeps_the_line_numbers_after_it(tmp_path):
    good = ",".join(GOOD_V1).encode()
    # Arrow ends a record at a lone CR: line 3 reads as two short records, both rejected on line 3.
    lines = [",".join(V1_HEADER).encode(), good, good[:20] + b"\r" + good[20:], good]
    path = tmp_path / "cr.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    frame, report = read_flows(path, ReadConfig(line_column="_line"))
    assert frame["_line"].tolist() == [2, 4] and balanced(report)
    assert [r["line"] for r in rejects_of(report)] == ["3", "3"]
