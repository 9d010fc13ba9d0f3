"""Property tests of the flow-file reader: real rows of the shared sample, mutated by hypothesis.

Two families, both checked by :func:`tests.fuzz.harness.check_file` (rows read =
accepted + rejected = yielded + rejected; no exception but FlowReadError, whose
message is one line naming the file; every accepted value equal to the exact
value of its text):

* value mutations keep the lines: a field replaced by a hard value (an
  integer past 2**63, a float with 17 digits, invalid UTF-8, a sign, white
  space...), dropped or doubled. Every line left alone must come out
  accepted, with its own line number;
* byte mutations break the structure: bytes inserted (line ends, quotes,
  carriage returns, NUL, a BOM), cut out or flipped, in plain, gzip and cut
  gzip files.

This is the short run that is part of the suite; ``scripts/fuzz_reader.py`` is
the long one (atheris).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install .[test])")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .fuzz.harness import check_file  # noqa: E402

# FLOWSENTINEL_FUZZ_EXAMPLES=2000 runs a longer session by hand.
SETTINGS = settings(max_examples=int(os.environ.get("FLOWSENTINEL_FUZZ_EXAMPLES", "40")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HARD_VALUES = [
    b"", b" ", b"nan", b"NaN", b"-nan", b"inf", b"-inf", b"Infinity", b"1e400", b"-0", b"-1", b"+5", b"0x10",
    b"1_000", b"1.5", b"2.0", b"1e3", b"1E+03", b".5", b"5.", b"9223372036854775807", b"9223372036854775808",
    b"18446744073709551615", b"18446744073709551616", b"1e30", b"1e-400", b"0e-999999", b"1.0000000000000001",
    b"99999999999999999e3", b"9999999999999e5", b"9007199254740993", b"9007199254740993.0", b"\xff", b"D\xe9S",
    b"\xef\xbb\xbf1", b"\x00", b"1 2", b" 7 ", b"\t8", "\u0661\u0662".encode(), b"1e999999999", b"00000000000000000000001",
]
VALUES = st.one_of(
    st.sampled_from(HARD_VALUES),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda i: str(i).encode()),
    st.floats().map(lambda f: repr(f).encode()),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: str(d).encode()),
    st.text(alphabet=st.characters(blacklist_characters='\n\r",', blacklist_categories=("Cs",)), max_size=12)
    .map(lambda s: s.encode()),
    st.binary(max_size=8).map(lambda b: b.translate(None, b'\n\r",')),
)
SPECIAL = [b"\n", b'"', b"\r", b",", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\r\n", b'""', b"\n\n"]


class _Lines(tuple):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<header and {len(self[1])} rows of the real sample>"


@pytest.fixture(scope="module")
def real_lines(sample_path) -> tuple[bytes, list[bytes]]:
    """The header and the first 400 rows of the real sample."""
    with gzip.open(sample_path, "rb") as fh:
        lines = [fh.readline().rstrip(b"\n") for _ in range(401)]
    return _Lines((lines[0], lines[1:]))


def _read(path: Path, text: bytes | None, folder: Path, block: int, threads: bool) -> list[dict]:
    return [check_file(path, text, folder / "rejects", require_labels=labels, block_bytes=block, threads=threads)
            for labels in (True, False)]


@SETTINGS
@given(data=st.data())
def test_value_mutations_lose_nothing_and_corrupt_nothing(real_lines, data):
    header, rows = real_lines
    start = data.draw(st.integers(0, len(rows) - 60), label="start")
    lines = list(rows[start:start + data.draw(st.integers(1, 60), label="rows")])
    width = header.count(b",") + 1
    mutations = data.draw(st.lists(st.tuples(st.integers(0, len(lines) - 1), st.integers(0, width - 1),
                                             st.sampled_from(["value", "value", "value", "drop", "double"]), VALUES),
                                   max_size=8), label="mutations")
    touched = set()
    for row, column, how, value in mutations:
        fields = lines[row].split(b",")
        column %= len(fields)  # an earlier "drop" may have shortened the row
        if how == "value":
            fields[column] = value
        elif how == "drop":
            del fields[column]
        else:
            fields.insert(column, fields[column])
        lines[row] = b",".join(fields)
        touched.add(row)
    text = header + b"\n" + b"\n".join(lines) + b"\n"
    block = data.draw(st.sampled_from([256, 4096, 1 << 20]), label="block")
    threads = data.draw(st.booleans(), label="threads")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for path in (folder / "m.csv", folder / "m.csv.gz"):
            path.write_bytes(text if path.suffix == ".csv" else gzip.compress(text, mtime=0))
            for report in _read(path, text, folder, block, threads):
                assert "error" not in report, report
                assert report["n_rows"] == len(lines) and report["complete"]
                untouched = {i + 2 for i in range(len(lines)) if i not in touched}
                assert untouched <= report["accepted_lines"], sorted(untouched - report["accepted_lines"])[:5]


@SETTINGS
@given(data=st.data())
def test_byte_mutations_stay_within_the_invariants(real_lines, data):
    header, rows = real_lines
    start = data.draw(st.integers(0, len(rows) - 30), label="start")
    text = bytearray(header + b"\n" + b"\n".join(rows[start:start + 30]) + b"\n")
    for _ in range(data.draw(st.integers(1, 6), label="n")):
        at = data.draw(st.integers(0, len(text)), label="at")
        how = data.draw(st.sampled_from(["insert", "insert", "delete", "flip", "cut"]), label="how")
        if how == "insert":
            text[at:at] = data.draw(st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=4)))
        elif how == "delete":
            del text[at:at + data.draw(st.integers(1, 40))]
        elif how == "flip" and at < len(text):
            text[at] ^= data.draw(st.integers(1, 255))
        elif how == "cut":
            del text[at:]
    text = bytes(text)
    form = data.draw(st.sampled_from(["csv", "gz", "gz cut", "gz flipped"]), label="form")
    block = data.draw(st.sampled_from([128, 4096]), label="block")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if form == "csv":
            path, known = folder / "b.csv", text
            path.write_bytes(text)
        else:
            packed = bytearray(gzip.compress(text, mtime=0))
            if form == "gz cut":
                del packed[data.draw(st.integers(10, len(packed))):]
            elif form == "gz flipped":
                packed[data.draw(st.integers(10, len(packed) - 1))] ^= data.draw(st.integers(1, 255))
            path, known = folder / "b.csv.gz", (text if form == "gz" else None)
            path.write_bytes(bytes(packed))
        _read(path, known, folder, block, data.draw(st.booleans(), label="threads"))
