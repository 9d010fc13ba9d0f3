"""The row rules of a flow file, applied to one Arrow batch as Spark hands it to Python.

Spark reads the archive with its own readers (CSV as text columns with a
corrupt-record column, Parquet with its own types); :func:`check_rows` then
applies the rules that :mod:`flowsentinel.io.readers` applies to a file read
by flowsentinel, with the same reason strings, so that a bad row is counted
and set aside with its file, line, column and reason, never dropped:

* a line with too few or too many fields: ``truncated line``, ``too many fields``;
* a counter or rate that is empty (``missing value``), not a number, ``NaN``,
  ``infinity`` or negative (``negative value``); a counter that is fractional
  (``not an integer``) or does not fit in 64 signed bits (``value out of range``);
* a ``Label`` other than 0 or 1 (``label not 0 or 1``); an empty ``Attack``.

The first problem of a row, in column order, is the one reported.
Integers are parsed as integers, never through a double, so every digit of
a 64-bit counter is kept.

>>> kinds = {"IN_BYTES": "int", "L7_PROTO": "float", "Attack": "name"}
>>> batch = pa.record_batch({"IN_BYTES": ["10", " 7 ", "-1", "x", "1.5", "9223372036854775808"],
...                          "L7_PROTO": ["7.0", "nan", "1", "1", "1", "1"],
...                          "Attack": ["DoS", "DoS", "DoS", "DoS", "DoS", "DoS"]})
>>> checked = check_rows(batch, kinds)
>>> checked.frame["IN_BYTES"].tolist(), checked.frame["IN_BYTES"].dtype.name
([10], 'int64')
>>> [(int(i), checked.columns[k], checked.reasons[k]) for k, i in enumerate(checked.bad)]
[(1, 'L7_PROTO', 'NaN'), (2, 'IN_BYTES', 'negative value'), (3, 'IN_BYTES', 'not a number'), (4, 'IN_BYTES', 'not an integer'), (5, 'IN_BYTES', 'value out of range')]
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import ATTACK_COLUMN, DATASET_COLUMN, LABEL_COLUMN, TIME_COLUMNS, Schema

__all__ = ["KINDS", "REASONS", "CheckedRows", "column_kinds", "check_rows", "parse_value", "structure_reason"]

#: Column kinds: ``int`` (a counter: non-negative, int64), ``float`` (non-negative),
#: ``label`` (0 or 1), ``name`` (non-empty text), ``text`` (trimmed text), ``raw`` (as read).
KINDS = ("int", "float", "label", "name", "text", "raw")
_NUMERIC = ("int", "float", "label")
INT64_MAX = (1 << 63) - 1
_DIGITS = r"^[0-9]{1,18}$"  # below 10**18 < 2**63: exact through Arrow's cast
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def column_kinds(schema: Schema, columns: Sequence[str], *, require_labels: bool = False) -> dict[str, str]:
    """The kind of each column of a file of ``schema`` (columns beyond the schema are passed through).

    As ``detect`` reads a file, the label columns are checked only when
    ``require_labels``: a flow is scored whatever its ``Label`` says.

    >>> from flowsentinel.schema import get_schema
    >>> column_kinds(get_schema("v1"), ["IPV4_SRC_ADDR", "L7_PROTO", "IN_BYTES", "Label", "Attack", "FLOW_ID"])
    {'IPV4_SRC_ADDR': 'text', 'L7_PROTO': 'float', 'IN_BYTES': 'int', 'Label': 'raw', 'Attack': 'raw', 'FLOW_ID': 'raw'}
    """
    kinds = {}
    numeric = set(schema.numeric_features)
    for col in columns:
        if col in numeric:
            kinds[col] = "float" if schema.dtype(col) == "float64" else "int"
        elif col == LABEL_COLUMN:
            kinds[col] = "label" if require_labels else "raw"
        elif col == ATTACK_COLUMN:
            kinds[col] = "name" if require_labels else "raw"
        elif col in schema.features or col == DATASET_COLUMN:
            kinds[col] = "text"
        elif col in TIME_COLUMNS:
            # Flow times beside an older schema: alert records read them as numbers.
            kinds[col] = "float"
        else:
            kinds[col] = "raw"
    return kinds


def parse_value(text: str | None, kind: str) -> tuple[int | float | None, str]:
    """One text value as ``kind``: ``(value, "")``, or ``(None, reason)``.

    >>> parse_value(" 1e3 ", "int"), parse_value("2.5", "int"), parse_value("-0", "int")
    ((1000, ''), (None, 'not an integer'), (0, ''))
    >>> parse_value("-inf", "float"), parse_value("Infinity", "float"), parse_value("1.0", "label")
    ((None, 'infinity'), (None, 'infinity'), (1, ''))
    >>> parse_value("0x1A", "int"), parse_value("", "float"), parse_value("2", "label")
    ((None, 'not a number'), (None, 'missing value'), (None, 'label not 0 or 1'))
    """
    text = (text or "").strip()
    if not text:
        return None, "missing value"
    bare = text.lower().lstrip("+-")
    if bare == "nan":
        return None, "NaN"
    if bare in ("inf", "infinity"):
        return None, "infinity"
    if not _NUMBER.fullmatch(text):
        return None, "not a number"
    if kind == "float":
        value = float(text)
        if math.isinf(value):
            return None, "infinity"
        return (None, "negative value") if value < 0 else (value, "")
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above admits only decimals
        return None, "not a number"
    if number.is_zero():
        return 0, ""
    if number.is_signed():
        return None, "negative value"
    if kind == "label":
        return (1, "") if number == 1 else (None, "label not 0 or 1")
    # Bound the exponent before int(), so that "1e999999999" costs nothing.
    if number.adjusted() >= 19:
        return None, "value out of range"
    if number != number.to_integral_value():
        return None, "not an integer"
    value = int(number)
    return (None, "value out of range") if value > INT64_MAX else (value, "")


def structure_reason(line: str, n_columns: int) -> tuple[str, str]:
    """Why a line that the CSV parser could not split into ``n_columns`` fields is bad: ``(reason, value)``.

    >>> structure_reason("1,2", 3), structure_reason("1,2,3,4", 3)
    (('truncated line', '2 of 3 fields'), ('too many fields', '4 of 3 fields'))
    """
    fields = next(csv.reader([line]), [])
    reason = "truncated line" if len(fields) < n_columns else "too many fields"
    return reason, f"{len(fields)} of {n_columns} fields"


@dataclass
class CheckedRows:
    """One batch after the rules: the good rows typed, the bad ones with what was wrong.

    Attributes:
        frame: the good rows, numeric columns as int64/float64, text trimmed.
        good: per input row, whether it passed.
        bad: positions (in the batch) of the rows that did not, ascending.
        columns, reasons, values, texts: per bad row, the column and reason
            of its first problem, the value as written, and the whole row.
    """

    frame: pd.DataFrame
    good: np.ndarray
    bad: np.ndarray
    columns: list[str]
    reasons: list[str]
    values: list[str]
    texts: list[str]


#: What can be wrong with a value; a column's problems are codes into this tuple (0: nothing).
REASONS = ("", "missing value", "not a number", "NaN", "infinity", "negative value", "not an integer",
           "value out of range", "label not 0 or 1")
_CODE = {reason: code for code, reason in enumerate(REASONS)}


def _strings(arr: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr


def _settle(values: np.ndarray, codes: np.ndarray, odd: np.ndarray, text: pa.Array, kind: str) -> None:
    """Decide the values the bulk parse left open, one by one (rare in real files)."""
    raw = text.to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(odd):
        value, reason = parse_value(raw[i], kind)
        codes[i] = _CODE[reason]
        values[i] = 0 if value is None else value


def _bulk_cast(text: pa.Array, kind: str) -> np.ndarray | None:
    """Arrow's own parse of a whole column, where every value is plain (the common case), else ``None``."""
    try:
        return pc.cast(text, pa.float64() if kind == "float" else pa.int64()).to_numpy(zero_copy_only=False).copy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _check_text_numbers(arr: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Typed values and problem codes of a text column."""
    raw = _strings(arr)
    codes = np.zeros(len(arr), dtype=np.uint8)
    values = _bulk_cast(raw, kind) if not raw.null_count else None
    if values is not None:
        text = raw
        with np.errstate(invalid="ignore"):
            odd = values < 0 if kind != "float" else ~np.isfinite(values) | (values < 0)
    else:
        text = pc.utf8_trim_whitespace(raw)
        if kind == "float":
            values = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False), dtype=object), errors="coerce")
            values = np.array(values.to_numpy(dtype="float64", na_value=np.nan))  # pandas may give a read-only view
            with np.errstate(invalid="ignore"):
                odd = ~np.isfinite(values) | (values < 0)
        else:
            digits = pc.fill_null(pc.match_substring_regex(text, _DIGITS), False)
            values = pc.cast(pc.if_else(digits, text, pa.scalar("0")), pa.int64()).to_numpy(zero_copy_only=False).copy()
            odd = ~digits.to_numpy(zero_copy_only=False)
    if kind == "label":
        odd |= values > 1
    # What the bulk parse did not settle as a plain non-negative number is looked at alone.
    if odd.any():
        _settle(values, codes, odd, text, kind)
    return values, codes


def _check_typed_numbers(arr: pa.Array, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Typed values and problem codes of a column already typed as numbers (Parquet)."""
    codes = np.zeros(len(arr), dtype=np.uint8)
    null = arr.is_null().to_numpy(zero_copy_only=False)

    def mark(mask: np.ndarray, reason: str) -> None:
        codes[mask & (codes == 0)] = _CODE[reason]

    if pa.types.is_integer(arr.type):
        values = arr.fill_null(0).to_numpy(zero_copy_only=False)
        if pa.types.is_unsigned_integer(arr.type):
            mark(values > INT64_MAX, "value out of range")
        else:
            mark(values < 0, "negative value")
        if kind == "label":
            mark(values > 1, "label not 0 or 1")
        values = values.astype(np.float64 if kind == "float" else np.int64)
    else:
        values = arr.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            mark(np.isnan(values), "NaN")
            mark(np.isinf(values), "infinity")
            mark(values < 0, "negative value")
            if kind != "float":
                mark(values != np.floor(values), "not an integer")
                mark(values >= 2.0**63, "value out of range")
                if kind == "label":
                    mark(values > 1, "label not 0 or 1")
                values = np.where(codes == 0, values, 0).astype(np.int64)
    codes[null] = _CODE["missing value"]
    return values, codes


def _cell(value) -> str:
    return "" if value is None else str(value)


def check_rows(batch: pa.RecordBatch | pa.Table, kinds: Mapping[str, str], corrupt_column: str | None = None,
               n_file_columns: int | None = None) -> CheckedRows:
    """Apply the row rules to ``batch`` (columns named as in ``kinds``; see the module docstring).

    ``corrupt_column`` holds the raw line where Spark's CSV parser found the
    wrong number of fields (``n_file_columns``: how many the header has).
    """
    n = batch.num_rows
    names = [c for c in batch.schema.names if c in kinds]
    typed: dict[str, np.ndarray] = {}
    first = np.zeros(n, dtype=np.uint8)
    first_col = np.full(n, -1, dtype=np.int64)
    if corrupt_column is not None and corrupt_column in batch.schema.names:
        corrupt = batch.column(corrupt_column).is_valid().to_numpy(zero_copy_only=False)
    else:
        corrupt = np.zeros(n, dtype=bool)
    for j, col in enumerate(names):
        kind = kinds[col]
        arr = batch.column(col)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        codes = None
        if kind in _NUMERIC:
            texty = pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type)
            values, codes = (_check_text_numbers if texty else _check_typed_numbers)(arr, kind)
            if arr.null_count:
                codes[arr.is_null().to_numpy(zero_copy_only=False)] = _CODE["missing value"]
        elif kind in ("name", "text"):
            text = pc.fill_null(pc.utf8_trim_whitespace(_strings(arr)), "")
            values = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
            if kind == "name":
                codes = np.where(pc.equal(text, "").to_numpy(zero_copy_only=False), _CODE["missing value"], 0)
        else:
            values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
        typed[col] = values
        if codes is not None:
            hit = (codes != 0) & (first == 0)
            if hit.any():
                first[hit] = codes[hit]
                first_col[hit] = j
    bad_mask = corrupt | (first != 0)
    good = ~bad_mask
    frame = pd.DataFrame({col: _typed_column(typed[col] if not bad_mask.any() else typed[col][good], kinds[col])
                          for col in names})
    bad = np.flatnonzero(bad_mask)
    columns, reasons, values, texts = [], [], [], []
    if len(bad):
        raw = {col: batch.column(col).take(pa.array(bad)).to_pylist() for col in names}
        lines = batch.column(corrupt_column).take(pa.array(bad)).to_pylist() if corrupt.any() else None
        for k, i in enumerate(bad.tolist()):
            if corrupt[i]:
                reason, value = structure_reason(lines[k], n_file_columns or len(names))
                columns.append("")
                reasons.append(reason)
                values.append(value)
                texts.append(lines[k])
                continue
            col = names[first_col[i]]
            columns.append(col)
            reasons.append(REASONS[first[i]])
            values.append(_cell(raw[col][k]))
            texts.append(",".join(_cell(raw[c][k]) for c in names))
    return CheckedRows(frame, good, bad, columns, reasons, values, texts)


def _typed_column(values: np.ndarray, kind: str):
    if kind in ("int", "label"):
        return values.astype("int64", copy=False)
    if kind == "float":
        return values.astype("float64", copy=False)
    return values
