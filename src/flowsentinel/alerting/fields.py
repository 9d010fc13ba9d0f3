"""The columns of a flow frame as JSON text, one array per field, built without a loop over flows.

Alert writing must keep up with scoring (over 100k flows/s), so records are
not built as one dict per flow: each field is turned into an array of JSON
fragments once per frame (:func:`json_ints`, :func:`json_strings`,
:func:`iso_times`, ...) and the fragments are concatenated column-wise with
:func:`cat` (numpy's string ufuncs). Strings are escaped once per distinct
value, not once per flow.

:class:`FlowColumns` holds what a record needs from a frame of NF flows;
every field is ``None`` when the frame lacks its column, so that a record
leaves the key out instead of inventing a value.

>>> cat_list('{"a":', json_ints(np.array([1, 2])), "}")
['{"a":1}', '{"a":2}']
>>> json_fixed(np.array([0.5, 0.973, np.nan, 1.0])).tolist()
['0.5', '0.973', 'null', '1.0']
>>> iso_times(np.array([1.5e12 + 0.25]), "+0000").tolist()
['2017-07-14T02:40:00.000250+0000']
>>> cat("x", "y").tolist(), cat_list(np.array(["a", "b"], dtype=object), "-", json_ints(np.array([1, 2])))
(['xy'], ['a-1', 'b-2'])
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from itertools import islice, repeat

import numpy as np
import pandas as pd

try:  # numpy >= 2: vectorised string ufuncs; the MindSpore environment pins numpy < 2
    from numpy.dtypes import StringDType
except ImportError:  # pragma: no cover - exercised in the MindSpore environment
    StringDType = None

from ..schema import ICMP_PROTOCOLS
from .community_id import community_id_array, community_ids
from .ndpi import app_protos

__all__ = [
    "FlowColumns",
    "PROTO_NAMES",
    "cat",
    "cat_list",
    "factorize_text",
    "flow_ids",
    "iso_times",
    "json_fixed",
    "json_ints",
    "json_strings",
    "text_by_value",
    "proto_codes",
    "proto_names",
]

_STRING = StringDType() if StringDType is not None else None
#: IP protocol numbers as Suricata names them in ``proto``.
PROTO_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP", 58: "IPv6-ICMP", 132: "SCTP"}
# Suricata's flow_id fits in 51 bits so that JSON readers that parse numbers
# as doubles keep every digit.
_FLOW_ID_MASK = np.uint64((1 << 51) - 1)


def cat_list(*parts) -> list[str]:
    """Concatenate text arrays and constants element-wise, as a list of Python strings.

    Each row is joined once from its pieces (consecutive constants merged
    first): adding arrays pairwise would copy each row's growing text once
    per piece.
    """
    pieces, pending, n = [], [], None
    for part in parts:
        if isinstance(part, str):
            pending.append(part)
            continue
        if pending:
            pieces.append(repeat("".join(pending)))
            pending = []
        column = part.tolist() if isinstance(part, np.ndarray) else list(part)
        n = len(column)
        pieces.append(column)
    if pending:
        pieces.append(repeat("".join(pending)))
    if n is None:
        return ["".join(p for part in pieces for p in islice(part, 1))]
    return list(map("".join, zip(*pieces)))


def cat(*parts) -> np.ndarray:
    """Concatenate text arrays and constants element-wise, as an object array (see :func:`cat_list`)."""
    return _objects(cat_list(*parts))


def _objects(items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _texts(values: np.ndarray, convert) -> np.ndarray:
    """``convert`` of each value, computed once per distinct value where values repeat."""
    codes, uniques = pd.factorize(values)
    if len(uniques) * 2 > len(values):
        return _objects(list(map(convert, values.tolist())))
    return _objects(list(map(convert, uniques.tolist())))[codes]


def _affixed(prefix: str, suffix: str):
    return lambda v: f"{prefix}{v}{suffix}"


def json_ints(values: np.ndarray, prefix: str = "", suffix: str = "") -> np.ndarray:
    """Integers as JSON numbers between ``prefix`` and ``suffix`` (NaN as ``null``)."""
    values = np.asarray(values)
    convert = _affixed(prefix, suffix)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        text = _int_texts(np.where(bad, 0, values).astype(np.int64), prefix, suffix)
        return np.where(bad, convert("null"), text) if bad.any() else text
    return _int_texts(values.astype(np.int64), prefix, suffix)


def _int_texts(ints: np.ndarray, prefix: str, suffix: str) -> np.ndarray:
    """Integers as text between ``prefix`` and ``suffix``, an object array.

    Numbers that mostly differ (row numbers, flow ids) are formatted by
    numpy's string ufuncs in one pass; repeating ones once per distinct value.
    """
    if _STRING is None or len(ints) < 64 or len(pd.unique(ints[:64])) < 32:
        return _texts(ints, _affixed(prefix, suffix))
    text = ints.astype(_STRING)
    if prefix:
        text = np.strings.add(prefix, text)
    if suffix:
        text = np.strings.add(text, suffix)
    return text.astype(object)


def json_fixed(values: np.ndarray, digits: int = 6, prefix: str = "", suffix: str = "") -> np.ndarray:
    """Floats rounded to ``digits`` decimals, as short JSON numbers (NaN as ``null``)."""
    values = np.asarray(values, dtype="float64")
    bad = ~np.isfinite(values)
    scaled = np.rint(np.where(bad, 0.0, values) * 10.0**digits).astype(np.int64)
    codes, uniques = pd.factorize(scaled)
    whole, frac = np.divmod(np.abs(uniques), 10**digits)
    if _STRING is None:
        table = _objects([f"{prefix}{'-' if u < 0 else ''}{w}.{(f'{f:0{digits}d}'.rstrip('0') or '0')}{suffix}"
                          for u, w, f in zip(uniques.tolist(), whole.tolist(), frac.tolist())])
        text = table[codes]
        return np.where(bad, f"{prefix}null{suffix}", text) if bad.any() else text
    frac_text = np.strings.rstrip(np.strings.zfill(frac.astype(_STRING), digits), "0")
    frac_text = np.where(frac_text == "", "0", frac_text)
    sign = np.where(uniques < 0, "-", "")
    table = np.strings.add(np.strings.add(np.strings.add(np.strings.add(prefix, sign), whole.astype(_STRING)), "."),
                           np.strings.add(frac_text, suffix))
    text = table.astype(object)[codes]
    return np.where(bad, f"{prefix}null{suffix}", text) if bad.any() else text


def factorize_text(values) -> tuple[np.ndarray, np.ndarray]:
    """Codes (``-1`` where missing) into the distinct values, in the order they first appear.

    What ``pd.factorize`` gives for the values as objects, but a column held
    by Arrow (pandas' ``str`` columns, as the readers give them) is encoded
    by Arrow, without a Python string per value and without the GIL: about a
    tenth of the time for 50,000 addresses.

    >>> codes, uniques = factorize_text(pd.Series(["b", None, "a", "b"], dtype="str"))
    >>> codes.tolist(), uniques.tolist()
    ([0, -1, 1, 0], ['b', 'a'])
    """
    arrow = _arrow_text(values)
    if arrow is not None:
        import pyarrow.compute as pc

        encoded = arrow.dictionary_encode()
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        return codes, encoded.dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False)
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def _arrow_text(values):
    """The Arrow string array behind a pandas column of text, or ``None`` where it is not one."""
    array = getattr(values, "array", values)
    if not hasattr(array, "__arrow_array__") or not pd.api.types.is_string_dtype(getattr(array, "dtype", None)):
        return None
    import pyarrow as pa

    try:
        arrow = pa.array(array)
    except (pa.ArrowException, TypeError):  # pragma: no cover - pandas hands Arrow its own arrays
        return None
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    return arrow if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type) else None


def _by_value(values, encode, missing=None, factors=None) -> np.ndarray:
    """``encode`` applied once per distinct value (missing values give ``missing``).

    ``factors``: the values' :func:`factorize_text`, where already known.
    """
    codes, uniques = factorize_text(values) if factors is None else factors
    table = _objects([encode(u) for u in uniques] + [missing])
    return table[np.where(codes < 0, len(uniques), codes)]


def text_by_value(values, prefix: str = "", suffix: str = "", convert=None) -> np.ndarray:
    """``prefix + convert(value) + suffix`` per value, once per distinct value; ``""`` where a value is missing."""
    convert = convert or (lambda v: f"{prefix}{v}{suffix}")
    return _by_value(values, convert, "")


def json_strings(values, prefix: str = "", suffix: str = "", missing: str | None = "null") -> np.ndarray:
    """Values as JSON strings between ``prefix`` and ``suffix``, escaped once per distinct value.

    A missing value gives ``prefix + "null" + suffix``, or ``""`` (the key left out) with ``missing=None``.
    """
    return _by_value(values, lambda v: f"{prefix}{json.dumps(str(v))}{suffix}",
                     "" if missing is None else f"{prefix}{missing}{suffix}")


def iso_times(ms: np.ndarray, zone: str = "+0000", prefix: str = "", suffix: str = "") -> np.ndarray:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SS.ffffff`` plus ``zone`` (``+0000`` as Suricata, ``Z`` as ECS)."""
    ms = np.asarray(ms, dtype="float64")
    micros = np.rint(ms * 1000.0).astype(np.int64)
    codes, uniques = pd.factorize(micros)
    seconds, frac = np.divmod(np.asarray(uniques, dtype=np.int64), 1_000_000)
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(object)
    table = _objects([f"{prefix}{t}.{f:06d}{zone}{suffix}" for t, f in zip(text.tolist(), frac.tolist())])
    return table[codes]


def proto_names(proto: np.ndarray, lower: bool = False, prefix: str = "", suffix: str = "") -> np.ndarray:
    """Suricata's ``proto`` text per flow (the number for protocols it has no name for)."""
    codes, names = proto_codes(proto, lower, prefix, suffix)
    return names[codes]


def proto_codes(proto: np.ndarray, lower: bool = False, prefix: str = "", suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """:func:`proto_names` as codes into a table of names (its last entry ``None``, for missing values)."""
    def name(p):
        text = PROTO_NAMES.get(int(p), str(int(p)))
        return f"{prefix}{text.lower() if lower else text}{suffix}"
    proto = np.asarray(proto)
    codes, uniques = pd.factorize(proto if proto.dtype.kind in "iuf" else proto.astype(object), use_na_sentinel=True)
    table = _objects([name(u) for u in uniques.tolist()] + [None])
    return np.where(codes < 0, len(uniques), codes), table


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a cheap, well-mixed 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)).astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _string_hashes(values, factors=None) -> np.ndarray:
    """:func:`hash_text` of each value; 0 where one is missing (a flow without an address still gets an id)."""
    return _by_value(values, lambda v: hash_text(str(v)), 0, factors=factors).astype(np.uint64)


def hash_text(text: str) -> int:
    """A stable 56-bit hash of a string (Python's ``hash`` changes between runs)."""
    data = text.encode()
    return (zlib.crc32(data) << 24 ^ zlib.adler32(data)) & ((1 << 56) - 1)


@dataclass
class FlowColumns:
    """What records need from one frame of NF flows, as arrays (``None``: the frame lacks the column)."""

    n: int
    src: np.ndarray | None
    dst: np.ndarray | None
    sport: np.ndarray | None
    dport: np.ndarray | None
    proto: np.ndarray | None
    icmp_type: np.ndarray | None
    icmp_code: np.ndarray | None
    l7: np.ndarray | None
    bytes_in: np.ndarray | None
    bytes_out: np.ndarray | None
    pkts_in: np.ndarray | None
    pkts_out: np.ndarray | None
    start_ms: np.ndarray | None
    end_ms: np.ndarray | None
    #: ``src`` and ``dst`` as :func:`factorize_text` codes and values, computed once (:meth:`text_factors`);
    #: until then the frame's column they come from.
    _texts: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frame(cls, flows: pd.DataFrame) -> "FlowColumns":
        def col(name, dtype=None):
            if name not in flows.columns:
                return None
            return flows[name].to_numpy(dtype=dtype) if dtype else flows[name].to_numpy()

        proto = col("PROTOCOL", "float64")
        icmp_type = icmp_code = None
        if proto is not None:
            is_icmp = np.isin(proto, ICMP_PROTOCOLS)
            # NetFlow's convention, which nProbe and the meter keep: type * 256 + code.
            packed = col("ICMP_TYPE", "float64")
            if packed is None:
                packed = col("L4_DST_PORT", "float64")
            if packed is not None and is_icmp.any():
                packed = np.nan_to_num(packed).astype(np.int64)
                icmp_type = np.where(is_icmp, packed // 256, -1)
                icmp_code = np.where(is_icmp, packed % 256, -1)
        out = cls(
            n=len(flows),
            src=col("IPV4_SRC_ADDR"),
            dst=col("IPV4_DST_ADDR"),
            sport=col("L4_SRC_PORT", "float64"),
            dport=col("L4_DST_PORT", "float64"),
            proto=proto,
            icmp_type=icmp_type,
            icmp_code=icmp_code,
            l7=col("L7_PROTO", "float64"),
            bytes_in=col("IN_BYTES", "float64"),
            bytes_out=col("OUT_BYTES", "float64"),
            pkts_in=col("IN_PKTS", "float64"),
            pkts_out=col("OUT_PKTS", "float64"),
            start_ms=col("FLOW_START_MILLISECONDS", "float64"),
            end_ms=col("FLOW_END_MILLISECONDS", "float64"),
        )
        for name, column in (("src", "IPV4_SRC_ADDR"), ("dst", "IPV4_DST_ADDR")):
            if column in flows.columns:
                out._texts[name] = flows[column]
        return out

    def text_factors(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``src`` or ``dst`` as codes into its distinct values (:func:`factorize_text`), once per frame."""
        if getattr(self, name) is None:
            return None
        factors = self._texts.get(name)
        if not isinstance(factors, tuple):
            factors = self._texts[name] = factorize_text(getattr(self, name) if factors is None else factors)
        return factors

    def take(self, idx: np.ndarray) -> "FlowColumns":
        """The same columns for the rows ``idx`` only."""
        fields = {k: (None if v is None else v[idx]) for k, v in self.__dict__.items() if k not in ("n", "_texts")}
        out = FlowColumns(n=len(idx), **fields)
        for name in self._texts:
            codes, uniques = self.text_factors(name)
            out._texts[name] = (codes[idx], uniques)
        return out

    @property
    def is_icmp(self) -> np.ndarray:
        return self.icmp_type >= 0 if self.icmp_type is not None else np.zeros(self.n, dtype=bool)

    def event_ms(self, clock_ms: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each flow's time (its end, else its start) and whether it fell back to the clock."""
        when = np.full(self.n, np.nan)
        for times in (self.start_ms, self.end_ms):
            if times is not None:
                when = np.where(np.isfinite(times) & (times > 0), times, when)
        from_clock = ~np.isfinite(when)
        if from_clock.any():
            when[from_clock] = time.time() * 1000.0 if clock_ms is None else clock_ms
        return when, from_clock

    def _hashed_ports(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Protocol and the two "ports" as the Community ID hashes them (ICMP: type and code)."""
        proto = np.nan_to_num(self.proto).astype(np.int64)
        sport = np.zeros(self.n, np.int64) if self.sport is None else np.nan_to_num(self.sport).astype(np.int64)
        dport = np.zeros(self.n, np.int64) if self.dport is None else np.nan_to_num(self.dport).astype(np.int64)
        icmp = self.is_icmp
        if icmp.any():
            sport = np.where(icmp, self.icmp_type, sport)
            dport = np.where(icmp, self.icmp_code, dport)
        return proto, sport, dport

    def community_ids(self, seed: int) -> np.ndarray | None:
        """Community ID per flow, or ``None`` when the frame has no addresses or protocol."""
        if self.src is None or self.dst is None or self.proto is None:
            return None
        proto, sport, dport = self._hashed_ports()
        return community_ids(self.src, self.dst, proto, sport, dport, seed,
                             factors=(self.text_factors("src"), self.text_factors("dst")))

    def community_id_array(self, seed: int):
        """:meth:`community_ids` as a pyarrow string array (null where there is none), or ``None``."""
        if self.src is None or self.dst is None or self.proto is None:
            return None
        proto, sport, dport = self._hashed_ports()
        return community_id_array(self.src, self.dst, proto, sport, dport, seed,
                                  factors=(self.text_factors("src"), self.text_factors("dst")))

    def app_protos(self) -> np.ndarray | None:
        return None if self.l7 is None else app_protos(self.l7)


def flow_ids(cols: FlowColumns, rows: np.ndarray) -> np.ndarray:
    """Numeric ``flow_id`` per flow (51 bits): a hash of the 5-tuple and the start time.

    Where a flow has no start time (NF v2 files) its row number stands in,
    so that two flows with the same 5-tuple still get different ids.
    """
    h = np.zeros(cols.n, dtype=np.uint64)
    for name in ("src", "dst"):
        strings = getattr(cols, name)
        if strings is not None:
            h = _splitmix(h ^ _string_hashes(strings, cols.text_factors(name)))
    for numbers in (cols.sport, cols.dport, cols.proto):
        if numbers is not None:
            h = _splitmix(h ^ np.nan_to_num(numbers).astype(np.int64).astype(np.uint64))
    start = cols.start_ms if cols.start_ms is not None else None
    anchor = np.asarray(rows, dtype=np.int64).astype(np.uint64)
    if start is not None:
        ok = np.isfinite(start)
        anchor = np.where(ok, np.nan_to_num(start).astype(np.int64).astype(np.uint64) << np.uint64(1) | np.uint64(1),
                          anchor << np.uint64(1))
    return (_splitmix(h ^ anchor) & _FLOW_ID_MASK).astype(np.int64)
