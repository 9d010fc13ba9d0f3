"""One input through the flow-file reader, with the invariants a fuzzer checks.

Shared by the hypothesis tests (``tests/test_reader_fuzz.py``), the replay of
saved crashes (``tests/fuzz/test_regressions.py``) and the long atheris run
(``scripts/fuzz_reader.py``). :func:`check_file` reads a file the way
``train``/``evaluate`` and ``detect`` do and fails (``AssertionError``, or any
exception other than :class:`FlowReadError`) when:

* rows read differ from rows accepted + rows rejected, or from the rows yielded;
* an error message spans lines or does not name the file;
* an accepted value differs from the exact value of the text it came from
  (checked against :func:`exact_value`, written independently of the reader,
  for files whose lines can be split on commas);
* line numbers do not increase, or a column has the wrong dtype.
"""

from __future__ import annotations

import functools
import gzip
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from flowsentinel.errors import FlowReadError
from flowsentinel.io.readers import FlowReader, ReadConfig
from flowsentinel.schema import ATTACK_COLUMN, FLOAT_COLUMNS, LABEL_COLUMN, STRING_COLUMNS, V2_FEATURES

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
LINE = "_line"
HEADER = ",".join(V2_FEATURES + [LABEL_COLUMN, ATTACK_COLUMN, "Dataset"]).encode()
# A real NF-BoT-IoT-v2 row (the sample's first), for when a seed is needed without the data folder.
ROW = (b"192.168.100.149,4444,192.168.100.3,80,6,7.0,420,3,0,0,22,22,0,4294966,0,0,0,0,140,140,140,140,"
       b"140140.0,0.0,0,0,0,0,1120000,0,3,0,0,0,0,512,0,0,0,0,0,0,0.0,1,DoS,NF-BoT-IoT-v2")

_REJECT = object()


@functools.lru_cache(maxsize=1 << 16)
def exact_value(raw: bytes, kind: str):
    """What a field must become if accepted, or ``_REJECT`` if it must not be; independent of the reader."""
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return _REJECT
    if kind in ("text", "name"):
        return _REJECT if kind == "name" and not text else text
    if not _NUMBER.fullmatch(text):
        return _REJECT
    if kind == "float":
        value = float(text)
        return _REJECT if value < 0 or value in (float("inf"),) else value
    number = Decimal(text)
    if number.is_zero():
        return 0
    if number < 0 or number.adjusted() > 19:
        return _REJECT
    try:
        if number != number.to_integral_value():
            return _REJECT
    except InvalidOperation:
        return _REJECT
    value = int(number)
    if kind == "label":
        return value if value in (0, 1) else _REJECT
    return value if value < 2**63 else _REJECT


def kind_of(column: str) -> str:
    if column in STRING_COLUMNS:
        return "text"
    if column == LABEL_COLUMN:
        return "label"
    if column == ATTACK_COLUMN:
        return "name"
    return "float" if column in FLOAT_COLUMNS else "int"


def check_file(path: Path, text: bytes | None, rejects_dir: Path, *, require_labels: bool = True,
               block_bytes: int = 1 << 12, threads: bool = False) -> dict:
    """Read ``path`` and assert the invariants; ``text`` is its CSV text when known (for exact values).

    Returns the report as a dict plus ``accepted_lines`` (the set of line
    numbers accepted), or ``{"error": message}`` for a FlowReadError.
    """
    config = ReadConfig(require_labels=require_labels, allow_partial=True, block_bytes=block_bytes,
                        threads=threads, rejects_dir=rejects_dir, line_column=LINE, chunk_rows=97)
    try:
        reader = FlowReader(path, config)
        chunks = list(reader)
    except FlowReadError as exc:
        message = str(exc)
        assert "\n" not in message, f"message spans lines: {message!r}"
        assert str(path) in message or path.name in message, f"message does not name the file: {message!r}"
        return {"error": message}
    report = reader.report
    yielded = sum(len(c) for c in chunks)
    assert report.n_rows == report.n_accepted + report.n_rejected, report
    assert yielded == report.n_accepted, (yielded, report)
    assert all(len(c) <= 97 for c in chunks)
    result = {**report.as_dict(), "accepted_lines": set()}
    if not chunks:
        return result
    lines = np.concatenate([c[LINE].to_numpy() for c in chunks])
    # Two records share a line only where a carriage return on its own ends the first (as Arrow reads it).
    strictly = text is not None and b"\r" not in text
    assert (np.diff(lines) > 0 if strictly else np.diff(lines) >= 0).all() and (lines >= 2).all(), \
        "line numbers do not increase"
    for chunk in chunks:
        for column in chunk.columns:
            kind = kind_of(column)
            if column in reader.schema.features and kind == "int":
                assert chunk[column].dtype == np.int64 and (chunk[column] >= 0).all(), column
            elif column in reader.schema.features and kind == "float":
                values = chunk[column].to_numpy()
                assert values.dtype == np.float64 and np.isfinite(values).all() and (values >= 0).all(), column
    if text is not None and b'"' not in text and b"\r" not in text:
        _check_exact(chunks, text, reader, require_labels)
    result["accepted_lines"] = set(lines.tolist())
    return result


def _check_exact(chunks, text: bytes, reader: FlowReader, require_labels: bool) -> None:
    """Every accepted value equals the exact value of the field it came from (found by its line)."""
    lines = text.split(b"\n")
    index = {c: i for i, c in enumerate(reader.columns)}
    checked = [c for c in reader.schema.features if c in index]
    if require_labels:
        checked += [LABEL_COLUMN, ATTACK_COLUMN]
    for chunk in chunks:
        for record in chunk.to_dict("records"):
            fields = lines[record[LINE] - 1].split(b",")
            assert len(fields) == len(reader.columns), (record[LINE], fields)
            for column in checked:
                want = exact_value(fields[index[column]], kind_of(column))
                got = record[column]
                assert want is not _REJECT, f"line {record[LINE]} {column}: {fields[index[column]]!r} accepted as {got!r}"
                assert got == want and type(want)(got) == want, \
                    f"line {record[LINE]} {column}: {fields[index[column]]!r} read as {got!r}, exactly {want!r}"


def file_from_bytes(data: bytes, folder: Path) -> tuple[Path, bytes | None]:
    """A flow file made from fuzz bytes: the first byte picks the form, the rest is the body.

    0: CSV with the v2 header; 1: the same, gzip-compressed; 2: gzip, then cut
    at a point the second byte picks; 3: the bytes as a whole CSV file
    (header included); 4: the bytes as a Parquet file.
    """
    mode, body = (data[0] % 5, data[1:]) if data else (0, b"")
    if mode == 3:
        path, text = folder / "fuzz.csv", body
        path.write_bytes(body)
        return path, text
    if mode == 4:
        path = folder / "fuzz.parquet"
        path.write_bytes(body)
        return path, None
    text = HEADER + b"\n" + body
    if mode == 0:
        path = folder / "fuzz.csv"
        path.write_bytes(text)
        return path, text
    packed = gzip.compress(text, compresslevel=1, mtime=0)
    if mode == 2 and body:
        packed = packed[: 10 + body[0] * len(packed) // 256]
    path = folder / "fuzz.csv.gz"
    path.write_bytes(packed)
    return path, text if mode == 1 else None


def check_bytes(data: bytes, folder: Path) -> None:
    """One fuzz input, read in both the training and the detection configuration."""
    path, text = file_from_bytes(data, folder)
    check_file(path, text, folder / "rejects", require_labels=True)
    # The feature values are the same for detection: check what differs (labels let through), not them again.
    check_file(path, None, folder / "rejects", require_labels=False)
