"""Request bodies to flow columns: parsed by media type, checked value by value.

``POST /v1/score`` takes flows as JSON (an array of objects), JSON lines,
CSV (a header line, then one flow a line) or Arrow IPC (stream or file
format). :func:`parse_flows` turns the body into :class:`FlowColumns` (one
NumPy array per column) and :func:`validate_flows` checks them with the
rules the flow-file reader applies to every row of a file: a known numeric
column must hold a number that is present, finite and not negative; an
address must be present. The first bad row (then the first bad column in
it) is reported, 1-based, with the reason; nothing is dropped.

Columns, not a DataFrame, because a request is small and the scorer joins
the requests that wait together into one frame: building a DataFrame costs
about a millisecond whatever its size, so it is built once per batch.

>>> flows = parse_flows(b'[{"IN_BYTES": 10, "IPV4_SRC_ADDR": "10.0.0.1"}, {"IN_BYTES": -1}]', "application/json")
>>> validate_flows(flows)
Traceback (most recent call last):
...
flowsentinel.service.validate.BadFlows: row 2, column IN_BYTES: negative value (-1)
>>> parse_flows(b"[[[]]]", "application/json")
Traceback (most recent call last):
...
flowsentinel.service.validate.BadFlows: row 1: not a JSON object (each flow is an object of column: value)
>>> validate_flows(parse_flows(b"L4_DST_PORT,PROTOCOL\\n80,6\\n443,x\\n", "text/csv"))
Traceback (most recent call last):
...
flowsentinel.service.validate.BadFlows: row 2, column PROTOCOL: not a number ('x')
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import FlowReadError
from ..schema import FLOAT_COLUMNS, STRING_COLUMNS, TIME_COLUMNS, V1_FEATURES, V2_FEATURES, V3_FEATURES

__all__ = ["BadFlows", "TooManyFlows", "UnsupportedMedia", "FlowColumns", "MEDIA_TYPES", "media_kind",
           "parse_flows", "validate_flows"]

#: Media types accepted, by the kind of parser that reads them.
MEDIA_TYPES = {
    "application/json": "json",
    "application/x-ndjson": "lines",
    "application/jsonl": "lines",
    "application/jsonlines": "lines",
    "application/json-lines": "lines",
    "text/csv": "csv",
    "application/vnd.apache.arrow.stream": "arrow-stream",
    "application/vnd.apache.arrow.file": "arrow-file",
}

# Numeric columns checked when present: every NF v1/v2/v3 counter, code and
# timestamp, and the meter's FLOW_ID (alerts read it as an integer).
_NUMERIC = frozenset(c for c in V3_FEATURES + V2_FEATURES + V1_FEATURES + list(TIME_COLUMNS) + ["FLOW_ID"]
                     if c not in STRING_COLUMNS)


class BadFlows(FlowReadError):
    """A body that cannot be read as flows; ``row`` and ``column`` say where (1-based row)."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None, reason: str = ""):
        where = f"row {row}" if row is not None else ""
        where += (f", column {column}" if where else f"column {column}") if column is not None else ""
        super().__init__(f"{where}: {message}" if where else message)
        self.row, self.column, self.reason = row, column, reason or message


class TooManyFlows(BadFlows):
    """More flows in one request than the service takes."""


class UnsupportedMedia(FlowReadError):
    """A ``Content-Type`` the service does not read."""


@dataclass
class FlowColumns:
    """Flows as one array per column, all of length ``n``; strings are object arrays."""

    columns: dict[str, np.ndarray]
    n: int

    def __len__(self) -> int:
        return self.n

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "FlowColumns":
        return cls({str(c): frame[c].to_numpy() for c in frame.columns}, len(frame))

    @classmethod
    def concat(cls, parts: list["FlowColumns"]) -> "FlowColumns":
        """Parts with the same column names, one after another."""
        if len(parts) == 1:
            return parts[0]
        return cls({c: np.concatenate([p.columns[c] for p in parts]) for c in parts[0].columns},
                   sum(p.n for p in parts))

    def to_frame(self) -> pd.DataFrame:
        # Text stays in object columns: the scorer and the alert writer read
        # them back as NumPy arrays, which Arrow-backed strings would copy.
        return pd.DataFrame({c: (pd.Series(v, dtype=object, copy=False) if v.dtype == object else v)
                             for c, v in self.columns.items()}, copy=False)


def media_kind(content_type: str | None) -> str:
    """The parser for a ``Content-Type`` header (parameters such as charset ignored)."""
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        return MEDIA_TYPES[media]
    except KeyError:
        raise UnsupportedMedia(f"Content-Type {media or '(none)'!r} is not read; send one of {', '.join(MEDIA_TYPES)}") from None


def parse_flows(body: bytes, content_type: str | None, max_flows: int | None = None) -> FlowColumns:
    """The flows of a request body; raises :class:`BadFlows` naming the first unreadable row.

    ``max_flows`` stops the parse as soon as the count is known to be over
    it (raising :class:`TooManyFlows`), before the columns are built.
    """
    kind = media_kind(content_type)
    if not body.strip():
        raise BadFlows("empty body; send at least a header (CSV), [] (JSON) or a schema (Arrow)")
    if kind in ("json", "lines"):
        records = _json_records(body, kind)
        _check_count(len(records), max_flows)
        return _json_columns(records)
    table = _csv_table(body) if kind == "csv" else _arrow_table(body, kind)
    _check_count(table.num_rows, max_flows)
    return FlowColumns({name: table.column(name).to_numpy() for name in table.column_names}, table.num_rows)


def _check_count(n: int, max_flows: int | None) -> None:
    if max_flows is not None and n > max_flows:
        raise TooManyFlows(f"{n:,} flows in one request; at most {max_flows:,} are taken: split the batch")


def _json_records(body: bytes, kind: str) -> list[dict]:
    import orjson

    if kind == "json":
        try:
            records = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadFlows(f"not JSON: {exc}", reason="not JSON") from None
        if not isinstance(records, list):
            raise BadFlows("expected a JSON array of flow objects", reason="not an array")
    else:
        records = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise BadFlows(f"not JSON: {exc}", row=len(records) + 1, reason="not JSON") from None
    for i, record in enumerate(records, 1):
        if type(record) is not dict:
            raise BadFlows("not a JSON object (each flow is an object of column: value)", row=i, reason="not an object")
        for value in record.values():
            kind_ = type(value)
            if kind_ is dict or kind_ is list:
                key = next(k for k, v in record.items() if type(v) in (dict, list))
                raise BadFlows("a nested value; flow values are numbers or strings", row=i, column=key,
                               reason="nested value")
    return records


def _json_columns(records: list[dict]) -> FlowColumns:
    names = dict.fromkeys(records[0]) if records else {}
    for record in records:
        if len(record) != len(names) or record.keys() != names.keys():
            names.update(dict.fromkeys(record))
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        kinds = set(map(type, values))
        array = None
        if name in _NUMERIC and kinds <= {int, float}:
            try:
                array = np.array(values, dtype=np.int64 if kinds == {int} else np.float64)
            except OverflowError:
                array = None
        columns[name] = array if array is not None else np.array(values, dtype=object)
    return FlowColumns(columns, len(records))


def _csv_table(body: bytes):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    first = body.split(b"\n", 1)[0].decode("utf-8", "replace")
    names = [c.strip() for c in next(csv.reader([first]))]
    if len(set(names)) != len(names):
        twice = sorted({c for c in names if names.count(c) > 1})
        raise BadFlows(f"the CSV header names column(s) more than once: {', '.join(twice)}", reason="duplicate column")
    bad: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        # row.number is the line in the body (header = 1): data row = line - 1.
        what = "truncated line" if row.actual_columns < row.expected_columns else "too many fields"
        bad.append(((row.number or 0) - 1, f"{what}: {row.actual_columns} of {row.expected_columns} fields"))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            # Arrow types each column; one whose text is not all numbers stays
            # text and is checked value by value, so every bad value is named.
            convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True,
                                                 column_types={c: pa.string() for c in names if c not in _NUMERIC}),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BadFlows(f"not CSV: {exc}", reason="not CSV") from None
    if bad:
        row, what = min(bad)
        raise BadFlows(what, row=row, reason=what.split(":")[0])
    return table


def _arrow_table(body: bytes, kind: str):
    import pyarrow as pa

    try:
        source = pa.BufferReader(body)
        reader = pa.ipc.open_stream(source) if kind == "arrow-stream" else pa.ipc.open_file(source)
        table = reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise BadFlows(f"not Arrow IPC ({kind}): {exc}", reason="not Arrow") from None
    for name, typ in zip(table.column_names, table.schema.types):
        if pa.types.is_nested(typ) or pa.types.is_dictionary(typ):
            raise BadFlows(f"type {typ} is nested; flow values are numbers or strings", column=name, reason="nested value")
    if len(set(table.column_names)) != len(table.column_names):
        raise BadFlows("the Arrow schema names a column more than once", reason="duplicate column")
    return table


def _text_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floats of an object column, and the reason each element is not a number ('' where it is)."""
    out = np.empty(len(values), dtype=np.float64)
    why = np.full(len(values), "", dtype=object)
    for i, v in enumerate(values):
        t = type(v)
        if t is int or t is float:
            out[i] = v
            if t is float and math.isnan(v):
                why[i] = "missing value"
            continue
        out[i] = np.nan
        if v is None:
            why[i] = "missing value"
        elif t is str:
            text = v.strip()
            if not text:
                why[i] = "missing value"
                continue
            try:
                out[i] = float(text)
            except ValueError:
                why[i] = "not a number"
            else:
                if math.isnan(out[i]):
                    why[i] = "NaN"
        else:
            why[i] = "not a number"
    return out, why


def _first_problem(values: np.ndarray) -> tuple[np.ndarray | None, int, str]:
    """A column as numbers (``None`` when it is numeric already), and its first bad row (-1: none) and reason."""
    kind = values.dtype.kind
    if kind in "iu":
        negative = np.flatnonzero(values < 0)
        return None, (int(negative[0]) if len(negative) else -1), "negative value"
    if kind == "b":
        return np.zeros(len(values)), 0, "not a number"
    converted = None
    if kind == "f":
        why = np.where(np.isnan(values), "missing value", "")
    else:
        values, why = _text_numbers(values.astype(object, copy=False))
        converted = values
    with np.errstate(invalid="ignore"):
        why = np.where((why == "") & np.isinf(values), "infinity", why)
        why = np.where((why == "") & (values < 0), "negative value", why)
    bad = np.flatnonzero(why != "")
    if len(bad):
        return converted, int(bad[0]), str(why[bad[0]])
    return converted, -1, ""


def validate_flows(flows: FlowColumns) -> FlowColumns:
    """Check every known column and return the flows with the numeric ones as numbers.

    Columns that arrive as text (CSV, JSON strings) become numbers, ``int64``
    where every value is whole and the schema says integer, as the flow
    reader leaves them; raises :class:`BadFlows` at the first bad value.
    """
    first: tuple[int, int, str, str] | None = None
    columns = dict(flows.columns)
    for position, (name, values) in enumerate(flows.columns.items()):
        if name in STRING_COLUMNS:
            missing = np.flatnonzero(pd.isna(values))
            row, reason = (int(missing[0]) if len(missing) else -1), "missing value"
        elif name in _NUMERIC:
            converted, row, reason = _first_problem(values)
            if converted is not None:
                # Counters past 2**63 stay floats rather than wrap around.
                whole = name not in FLOAT_COLUMNS and bool(np.all((np.mod(converted, 1) == 0) & (converted < 2.0**63)))
                columns[name] = converted.astype(np.int64) if whole and row < 0 else converted
        else:
            continue
        if row >= 0 and (first is None or (row, position) < first[:2]):
            first = (row, position, name, reason)
    if first is not None:
        row, _, name, reason = first
        value = flows.columns[name][row]
        shown = repr(value.item() if isinstance(value, np.generic) else value)
        raise BadFlows(f"{reason} ({shown})", row=row + 1, column=name, reason=reason)
    return FlowColumns(columns, flows.n)
