"""Typed conversion and checks of flow-table columns: vectorised, with an exact reason per bad value.

A column comes as an Arrow array: already typed (the CSV parser's int64,
double or string; Parquet's own types) or as raw bytes when a typed parse of
its block failed. :func:`convert` gives back the typed values and, per row,
the code of what is wrong with it (0 for nothing). Arrow compute settles every
value it can in bulk; only the values it cannot are looked at one by one, by
:func:`parse_number`, which decides exactly: an integer is parsed as an
integer, never through a float, so ``9223372036854775807`` stays exact and
``9223372036854775808`` is out of range instead of becoming INT64_MIN.

>>> conv = convert(pa.array([b"5", b"-3", b"18446744073709551616", b"2.0", b"x", b" 7 "]), "int")
>>> conv.values.to_pylist()
[5, None, None, 2, None, 7]
>>> [REASONS[c] for c in conv.codes]
['', 'negative value', 'value out of range', '', 'not a number', '']
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["REASONS", "KINDS", "Converted", "Checked", "convert", "check_table", "parse_number", "type_problem",
           "value_text", "as_text"]

#: What can be wrong with one value; a code is an index into this tuple.
REASONS = (
    "",
    "invalid UTF-8",
    "missing value",
    "not a number",
    "NaN",
    "infinity",
    "negative value",
    "not an integer",
    "value out of range",
    "label not 0 or 1",
)
OK, BAD_UTF8, MISSING, NOT_NUMBER, NAN, INF, NEGATIVE, NOT_INTEGER, OUT_OF_RANGE, BAD_LABEL = range(len(REASONS))

#: Column kinds: ``int`` (a non-negative counter, int64), ``float`` (non-negative,
#: float64), ``label`` (0 or 1), ``name`` (non-empty text, trimmed), ``text``
#: (trimmed text), ``raw`` (text as written).
KINDS = ("int", "float", "label", "name", "text", "raw")
_NUMERIC = ("int", "float", "label")

INT64_MAX = (1 << 63) - 1
# The smallest double that does not fit in int64 (2**63 is exactly representable),
# and the bound below which every integer is a double.
_TWO_63 = float(1 << 63)
_TWO_53 = float(1 << 53)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Unsigned decimals, which Arrow casts to double as Python's float() would.
_DECIMAL = r"^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


@dataclass
class Converted:
    """A converted column: typed values (null where a number is bad) and per-row codes."""

    values: pa.Array | pa.ChunkedArray
    codes: np.ndarray | None = None  # uint8 per row; None when every value is fine
    plain: bool = False  # text whose every value Arrow's typed CSV parse would have taken as is


def parse_number(text: str, kind: str) -> tuple[int | float | None, int]:
    """One value as ``kind`` (``int``, ``float``, ``label``): ``(value, 0)`` or ``(None, code)``.

    Surrounding white space is ignored; signs, a decimal point and an
    exponent are accepted where the value they give is exactly right for the
    kind.

    >>> parse_number("1e3", "int"), parse_number("1.5", "int"), parse_number("9223372036854775808", "int")
    ((1000, 0), (None, 7), (None, 8))
    >>> parse_number("-inf", "float"), parse_number("1.0", "label"), parse_number("2", "label")
    ((None, 5), (1, 0), (None, 9))
    """
    text = text.strip()
    if not text:
        return None, MISSING
    bare = text.lower().lstrip("+-")
    if bare == "nan":
        return None, NAN
    if bare in ("inf", "infinity"):
        return None, INF
    if not _NUMBER.fullmatch(text):
        return None, NOT_NUMBER
    if kind == "float":
        value = float(text)
        if math.isinf(value):
            return None, INF
        return (None, NEGATIVE) if value < 0 else (value, OK)
    number = Decimal(text)
    if number.is_zero():
        return 0, OK
    if number.is_signed():
        return None, NEGATIVE
    if kind == "label":
        return (1, OK) if number == 1 else (None, BAD_LABEL)
    # adjusted() is the exponent of the leading digit: bound it before int()
    # so that "1e999999999" costs nothing.
    if number.adjusted() >= 19:
        return None, OUT_OF_RANGE
    if number.adjusted() < 0 or number != number.to_integral_value():
        return None, NOT_INTEGER
    value = int(number)
    return (None, OUT_OF_RANGE) if value > INT64_MAX else (value, OK)


def type_problem(kind: str, type_: pa.DataType) -> str | None:
    """Why a column of Arrow type ``type_`` cannot hold ``kind`` values, or ``None`` if it can.

    >>> type_problem("int", pa.bool_()), type_problem("int", pa.float32()), type_problem("raw", pa.bool_())
    ('it holds true/false values, not numbers', None, None)
    """
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if kind == "raw" or pa.types.is_null(type_):
        return None
    texty = pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_binary(type_) \
        or pa.types.is_large_binary(type_)
    numeric = pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)
    if texty or (numeric and kind in _NUMERIC) or (numeric and kind in ("text", "name")):
        return None
    if pa.types.is_boolean(type_):
        return "it holds true/false values, not numbers" if kind in _NUMERIC else "it holds true/false values"
    if pa.types.is_temporal(type_):
        return f"it holds {type_} dates or times, not {'numbers' if kind in _NUMERIC else 'text'}"
    return f"its type is {type_}, not {'numbers' if kind in _NUMERIC else 'text'}"


def convert(arr: pa.Array | pa.ChunkedArray, kind: str) -> Converted:
    """Typed values of one column and the code of each bad value (see :data:`REASONS`)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    type_ = arr.type
    if pa.types.is_dictionary(type_):
        arr = pc.cast(arr, type_.value_type)
        type_ = type_.value_type
    if pa.types.is_null(type_):
        n = len(arr)
        codes = np.full(n, MISSING, dtype=np.uint8)
        target = {"int": pa.int64(), "label": pa.int64(), "float": pa.float64()}.get(kind, pa.string())
        return Converted(pa.nulls(n, target), codes if kind in _NUMERIC or kind == "name" else None)
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        text, bad_utf8 = _decode(arr)
        return _from_text(text, kind, bad_utf8)
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return _from_text(arr, kind, None)
    if kind == "raw":
        return Converted(arr, plain=True)  # passed through as stored (Parquet numbers stay numbers)
    if kind in _NUMERIC:
        if pa.types.is_decimal(type_):
            return _from_text(pc.cast(arr, pa.string()), kind, None)
        return _from_numbers(arr, kind)
    # Numbers where text is expected (an address stored as an integer): their text.
    return _from_text(pc.cast(arr, pa.string()), kind, None)


def _decode(arr) -> tuple[pa.Array, np.ndarray | None]:
    """Binary to UTF-8 text; invalid values are decoded with replacement characters and flagged."""
    try:
        return pc.cast(arr, pa.string()), None
    except pa.ArrowInvalid:
        pass
    raw = arr.to_pylist()
    bad = np.zeros(len(raw), dtype=bool)
    text = []
    for i, value in enumerate(raw):
        if value is None:
            text.append(None)
            continue
        try:
            text.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            text.append(value.decode("utf-8", "replace"))
            bad[i] = True
    return pa.array(text, pa.string()), bad


def _from_text(text, kind: str, bad_utf8: np.ndarray | None) -> Converted:
    n = len(text)
    if kind == "raw":
        out = Converted(text, plain=True)
    elif kind in _NUMERIC:
        out = _parse_numbers(text, kind)
    else:
        text = pc.utf8_trim_whitespace(text)
        if kind == "text":
            out = Converted(text, plain=True)
        elif kind == "name":
            empty = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True)
            out = Converted(text, _codes_where(empty, MISSING, n), plain=True)
    if bad_utf8 is not None and bad_utf8.any():
        out.plain = False
        codes = out.codes if out.codes is not None else np.zeros(n, dtype=np.uint8)
        codes[bad_utf8] = BAD_UTF8
        out.codes = codes
        if kind in _NUMERIC:
            out.values = _null_where(out.values, bad_utf8)
    return out


def _parse_numbers(text, kind: str) -> Converted:
    """Numbers from trimmed text, in tiers from cheap to exact.

    1. For integer kinds, plain digit strings (at most 18 digits, so below
       2**63) cast to int64 in bulk.
    2. Unsigned decimals (``"0.0"``, ``"1e3"``, ``"7.178"``) cast to double in
       bulk. For integer kinds a double is kept only where it is exact: text of
       at most 15 characters (at most 15 significant digits, which a double
       holds) and a value below 2**53.
    3. Every other value through :func:`parse_number`, one by one.

    Casts are only asked of values known to pass them: a failed Arrow cast
    costs as much as a whole parse.
    """
    n = len(text)
    few = max(64, n // 200)
    if kind != "float":
        plain, plain_np = _plain_integers(text)
        if len(plain_np) - plain_np.sum() > few:
            # Spaces around the values (a header written with ", ")? Trimmed, they may be plain.
            text = pc.utf8_trim_whitespace(text)
            plain, plain_np = _plain_integers(text)
        if plain_np.all():
            out = _from_numbers(pc.cast(text, pa.int64()), kind)
            out.plain = True
            return out
        ints = _from_numbers(pc.cast(pc.if_else(plain, text, "0"), pa.int64()), kind)
        others = np.flatnonzero(~plain_np)
        if len(others) <= few:
            # A few bad values among integers: decide them one by one.
            return _one_by_one(ints, others, text, kind)
    else:
        text = pc.utf8_trim_whitespace(text)
    lengths = pc.fill_null(pc.binary_length(text), 0)
    like = pc.fill_null(pc.match_substring_regex(text, _DECIMAL), False)
    like_np = like.to_numpy(zero_copy_only=False)
    as_float = pc.cast(text if like_np.all() else pc.if_else(like, text, "0"), pa.float64())
    conv = _from_numbers(as_float, kind)
    if kind == "float":
        risky = ~like_np
    else:
        exact = like_np & _np_bool(pc.and_(pc.less_equal(lengths, 15), pc.less(pc.abs(as_float), _TWO_53)), n)
        conv = _pick(plain_np, ints, conv)
        risky = ~(plain_np | exact)
    rows = np.flatnonzero(risky)
    if not len(rows):
        conv.plain = kind == "float"
        return conv
    return _one_by_one(conv, rows, text, kind)


def _plain_integers(text):
    """Where ``text`` is 1 to 18 ASCII digits (below 2**63): as Arrow and as numpy booleans."""
    plain = pc.and_(pc.fill_null(pc.ascii_is_decimal(text), False),
                    pc.less_equal(pc.fill_null(pc.binary_length(text), 0), 18))
    return plain, plain.to_numpy(zero_copy_only=False)


def _pick(mask: np.ndarray, a: Converted, b: Converted) -> Converted:
    """Row by row, ``a`` where ``mask`` is set, else ``b``."""
    values = pc.if_else(pa.array(mask), a.values, b.values)
    if a.codes is None and b.codes is None:
        return Converted(values)
    zeros = np.zeros(len(mask), dtype=np.uint8)
    codes = np.where(mask, a.codes if a.codes is not None else zeros, b.codes if b.codes is not None else zeros)
    return Converted(values, codes.astype(np.uint8) if codes.any() else None)


def _one_by_one(conv: Converted, rows: np.ndarray, text, kind: str) -> Converted:
    """``conv`` with the values at ``rows`` decided by :func:`parse_number` instead."""
    n = len(text)
    codes = conv.codes.copy() if conv.codes is not None else np.zeros(n, dtype=np.uint8)
    values = conv.values
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    valid = ~codes.astype(bool)
    numbers = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).copy()
    for i, value in zip(rows, pc.take(text, pa.array(rows)).to_pylist()):
        number, code = parse_number(value or "", kind)
        codes[i] = code
        valid[i] = not code
        if not code:
            numbers[i] = number
    return Converted(pa.array(numbers, mask=~valid), codes if codes.any() else None)


def _from_numbers(arr, kind: str) -> Converted:
    """Range checks of numbers already typed; values of the target type, null where bad."""
    n = len(arr)
    type_ = arr.type
    codes = None

    def flag(mask, code):
        nonlocal codes
        mask = _np_bool(mask, n)
        if mask.any():
            if codes is None:
                codes = np.zeros(n, dtype=np.uint8)
            codes[mask & (codes == 0)] = code

    if arr.null_count:
        flag(pc.is_null(arr), MISSING)
    if pa.types.is_floating(type_):
        flag(pc.is_nan(arr), NAN)
        flag(pc.is_inf(arr), INF)
        flag(pc.less(arr, 0), NEGATIVE)
        if kind == "label":
            flag(pc.invert(pc.is_in(arr, pa.array([0.0, 1.0]))), BAD_LABEL)
        elif kind == "int":
            flag(pc.not_equal(pc.floor(arr), arr), NOT_INTEGER)
            flag(pc.greater_equal(arr, _TWO_63), OUT_OF_RANGE)
        if kind != "float":
            arr = pc.cast(_null_where(arr, codes), pa.int64(), safe=False)
    else:
        if pa.types.is_unsigned_integer(type_):
            flag(pc.greater(arr, pa.scalar(INT64_MAX, type_)), OUT_OF_RANGE)
        else:
            minimum = pc.min(arr).as_py()
            if minimum is not None and minimum < 0:
                flag(pc.less(arr, 0), NEGATIVE)
        if kind == "label":
            maximum = pc.max(arr).as_py()
            if maximum is not None and maximum > 1:
                flag(pc.greater(arr, 1), BAD_LABEL)
        target = pa.float64() if kind == "float" else pa.int64()
        if codes is not None:
            arr = _null_where(arr, codes)
        if arr.type != target:
            arr = pc.cast(arr, target, safe=False)
    if codes is not None:
        arr = _null_where(arr, codes)
    return Converted(arr, codes)


def _np_bool(mask, n: int) -> np.ndarray:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks() if mask.num_chunks != 1 else mask.chunk(0)
    out = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return out.astype(bool, copy=False) if len(out) == n else np.zeros(n, dtype=bool)


def _codes_where(mask, code: int, n: int) -> np.ndarray | None:
    mask = _np_bool(mask, n)
    if not mask.any():
        return None
    codes = np.zeros(n, dtype=np.uint8)
    codes[mask] = code
    return codes


def _null_where(arr, codes) -> pa.Array:
    """``arr`` with nulls where ``codes`` (a code array or a bool mask) is set."""
    if codes is None:
        return arr
    mask = np.asarray(codes).astype(bool)
    if not mask.any():
        return arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


@dataclass
class Checked:
    """A checked table: typed columns, the first problem of each row, and what was let through."""

    values: dict[str, pa.Array]
    codes: np.ndarray  # uint8 per row: the first problem (0: the row is accepted)
    columns: np.ndarray  # int16 per row: index of the column with that problem (-1: none)
    names: list[str]
    warnings: Counter = field(default_factory=Counter)
    plain: set = field(default_factory=set)  # text columns a typed parse would have taken (Converted.plain)

    @property
    def accepted(self) -> np.ndarray:
        return self.codes == 0


def check_table(columns: Mapping[str, pa.Array], roles: Mapping[str, tuple[str, bool]], n: int) -> Checked:
    """Convert and check each column by its role ``(kind, required)``.

    A row is rejected for the first required column (in the order given) that
    has a problem. A problem in a column that is not required costs the row
    nothing: the value is left empty (a number) or decoded with replacement
    characters (text), and it is counted in :attr:`Checked.warnings`.

    >>> t = {"IN_BYTES": pa.array([b"1", b"x"]), "Label": pa.array([b"yes", b"0"])}
    >>> c = check_table(t, {"IN_BYTES": ("int", True), "Label": ("label", False)}, 2)
    >>> c.codes.tolist(), c.values["Label"].to_pylist(), dict(c.warnings)
    ([0, 3], [None, 0], {'Label: not a number': 1})
    """
    names = list(columns)
    codes = np.zeros(n, dtype=np.uint8)
    where = np.full(n, -1, dtype=np.int16)
    warnings: Counter = Counter()
    values: dict[str, pa.Array] = {}
    plain = set()
    for j, name in enumerate(names):
        kind, required = roles[name]
        conv = convert(columns[name], kind)
        values[name] = conv.values
        if conv.plain:
            plain.add(name)
        if conv.codes is None:
            continue
        if required:
            new = (conv.codes != 0) & (codes == 0)
            codes[new] = conv.codes[new]
            where[new] = j
        else:
            for code, count in zip(*np.unique(conv.codes[conv.codes != 0], return_counts=True)):
                warnings[f"{name}: {REASONS[code]}"] += int(count)
    return Checked(values, codes, where, names, warnings, plain)


def value_text(arr, i: int) -> str:
    """The value at row ``i`` as text, for a rejects file (bytes decoded with escapes)."""
    return as_text(arr[i].as_py())


def as_text(value) -> str:
    """A Python value of a column as text for a rejects file: ``""`` for null, bytes decoded with escapes."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
