"""Request bodies: every format gives the same flows; every bad value is named by row and column."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa
import pytest

from flowsentinel.service.client import _body
from flowsentinel.service.validate import (
    BadFlows,
    TooManyFlows,
    UnsupportedMedia,
    parse_flows,
    validate_flows,
)

FORMATS = ("json", "csv", "arrow")


def _lines(frame) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in frame.to_dict(orient="records"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_flows_sent(flows, fmt):
    part = flows.iloc[:50]
    body, media = _body(part, fmt)
    got = validate_flows(parse_flows(body, media)).to_frame()
    assert list(got.columns) == list(part.columns)
    for col in part.columns:
        if part[col].dtype.kind in "iuf":
            np.testing.assert_allclose(got[col].to_numpy(np.float64), part[col].to_numpy(np.float64), err_msg=col)
        else:
            assert got[col].astype(str).tolist() == part[col].astype(str).tolist(), col


def test_json_lines_are_read_like_a_json_array(flows):
    part = flows.iloc[:20]
    a = validate_flows(parse_flows(_lines(part), "application/x-ndjson")).to_frame()
    b = validate_flows(parse_flows(_body(part, "json")[0], "application/json; charset=utf-8")).to_frame()
    assert a.equals(b)


def _bad(frame, row: int, column: str, value):
    bad = frame.iloc[:5].copy()
    bad[column] = bad[column].astype(object)
    bad.iloc[row - 1, bad.columns.get_loc(column)] = value
    return bad


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column,value,reason", [
    ("IN_BYTES", -5, "negative value"),
    ("L4_DST_PORT", "eighty", "not a number"),
    ("OUT_PKTS", None, "missing value"),
])
def test_the_first_bad_row_and_column_are_named(flows, fmt, column, value, reason):
    bad = _bad(flows, 3, column, value)
    if fmt == "arrow" and isinstance(value, str):
        bad[column] = bad[column].astype(str)
    body, media = _body(bad, fmt)
    with pytest.raises(BadFlows) as err:
        validate_flows(parse_flows(body, media))
    assert (err.value.row, err.value.column, err.value.reason) == (3, column, reason)
    assert f"row 3, column {column}" in str(err.value)


def test_the_earliest_row_wins_then_the_leftmost_column(flows):
    bad = _bad(_bad(flows, 4, "IN_PKTS", -1), 2, "OUT_BYTES", -1)
    bad.iloc[1, bad.columns.get_loc("IN_BYTES")] = -2
    with pytest.raises(BadFlows) as err:
        validate_flows(parse_flows(*_body(bad, "json")))
    first = min(("IN_BYTES", "OUT_BYTES"), key=list(bad.columns).index)
    assert (err.value.row, err.value.column) == (2, first)


@pytest.mark.parametrize("body,media,row,reason", [
    (b"[1, 2]", "application/json", 1, "not an object"),
    (b'[{"IN_BYTES": 1}, {"IN_BYTES": {"a": 1}}]', "application/json", 2, "nested value"),
    (b'[{"IN_BYTES": [1, 2]}]', "application/json", 1, "nested value"),
    (b'{"IN_BYTES": 1}', "application/json", None, "not an array"),
    (b"[" * 100_000 + b"]" * 100_000, "application/json", None, "not JSON"),
    (b'{"IN_BYTES": 1}\n{"IN_BYTES": 1', "application/x-ndjson", 2, "not JSON"),
    (b"IN_BYTES,OUT_BYTES\n1,2\n3\n", "text/csv", 2, "truncated line"),
    (b"IN_BYTES,OUT_BYTES\n1,2,3\n", "text/csv", 1, "too many fields"),
    (b"IN_BYTES,IN_BYTES\n1,2\n", "text/csv", None, "duplicate column"),
    (b"\x00\x01not arrow", "application/vnd.apache.arrow.stream", None, "not Arrow"),
    (b"   ", "application/json", None, "empty body; send at least a header (CSV), [] (JSON) or a schema (Arrow)"),
])
def test_unreadable_bodies_are_refused_with_where_and_why(body, media, row, reason):
    with pytest.raises(BadFlows) as err:
        parse_flows(body, media)
    assert err.value.row == row
    assert err.value.reason == reason


def test_nested_arrow_columns_are_refused():
    table = pa.table({"IN_BYTES": [1], "extra": [[1, 2]]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    with pytest.raises(BadFlows) as err:
        parse_flows(sink.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream")
    assert err.value.column == "extra" and err.value.reason == "nested value"


def test_booleans_and_huge_integers_are_not_counters():
    with pytest.raises(BadFlows) as err:
        validate_flows(parse_flows(b'[{"IN_BYTES": true}]', "application/json"))
    assert err.value.reason == "not a number"
    flows = validate_flows(parse_flows(b'[{"IN_BYTES": 18446744073709551615}]', "application/json"))
    assert flows.columns["IN_BYTES"][0] == pytest.approx(1.8446744073709552e19)


def test_too_many_flows_is_known_before_the_columns_are_built():
    body = orjson.dumps([{"IN_BYTES": i} for i in range(11)])
    with pytest.raises(TooManyFlows):
        parse_flows(body, "application/json", max_flows=10)
    assert len(parse_flows(body, "application/json", max_flows=11)) == 11


def test_unknown_media_types_are_refused():
    with pytest.raises(UnsupportedMedia, match="application/xml"):
        parse_flows(b"<flows/>", "application/xml")
    with pytest.raises(UnsupportedMedia, match="none"):
        parse_flows(b"[]", None)


def test_text_numbers_become_integers_where_whole(flows):
    body = b"IN_BYTES,L7_PROTO,IPV4_SRC_ADDR\n 10 ,7.178,10.0.0.1\n20,1,10.0.0.2\n"
    got = validate_flows(parse_flows(body, "text/csv")).columns
    assert got["IN_BYTES"].dtype == np.int64 and got["IN_BYTES"].tolist() == [10, 20]
    assert got["L7_PROTO"].tolist() == [7.178, 1.0]
    assert got["IPV4_SRC_ADDR"].tolist() == ["10.0.0.1", "10.0.0.2"]
