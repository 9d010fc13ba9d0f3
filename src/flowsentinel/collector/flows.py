"""Records to NF flows: what each exporter's record means as a bidirectional NF flow.

An NF flow is bidirectional: ``IN_*`` counts the client's packets to the
server, ``OUT_*`` the server's back. Exporters send one of two kinds of
record:

* **biflow** records carry both directions: nProbe's (``OUT_BYTES`` is v9
  field 23), or IPFIX with RFC 5103 reverse elements (softflowd ``-b``).
  They become flows as they are. Where the forward direction has no packets
  and the reverse does (softflowd ``-b`` orders the two ends by address,
  not by who spoke first), or the reverse started earlier, the two sides are
  swapped so that the source is the client.
* **one-way** records carry one direction (NetFlow v5, softflowd and most
  routers in v9/IPFIX). They become a flow whose ``OUT`` side is 0, and
  :mod:`flowsentinel.collector.stitch` merges the two records of one
  conversation into one flow.

:func:`normalize` fills the columns an NF flow derives from a record:

* ``CLIENT_TCP_FLAGS``/``SERVER_TCP_FLAGS`` from per-direction flags, and
  ``TCP_FLAGS`` as their OR;
* ``FLOW_DURATION_MILLISECONDS`` (end - start), ``DURATION_IN`` and
  ``DURATION_OUT`` from per-direction times;
* protocol-dependent fields, as the NF files hold them: ICMP flows have
  ports 0, and where a template has no ICMP type element the type and code
  are taken from the destination port (Cisco's convention, which v5 and
  softflowd follow: type x 256 + code); ``ICMP_IPV4_TYPE`` is the type of an
  IPv4 ICMP flow. A template without port elements but with an ICMP type
  element is an exporter's template for portless protocols: its flows have
  ports 0, and ``TCP_FLAGS`` 0 where it has no flags element.

Columns that no element of a template fills stay absent, so that a model
can say which columns it lacks (:func:`template_flow_columns`).
"""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd

from ..schema import ICMP_PROTOCOLS, V3_FEATURES, get_schema
from .decoder import Chunk
from .elements import REVERSE_PREFIX
from .records import RecordBatch, records_from_chunks
from .templates import Domain, Template

__all__ = [
    "PAIRS", "MIN_COLUMNS", "MAX_COLUMNS", "SUM_COLUMNS", "KEY_COLUMNS", "ARRIVAL", "DOMAIN", "normalize",
    "is_one_way", "swap_sides", "to_frame", "to_frames", "concat_columns", "template_flow_columns", "address_text",
]

#: (client-to-server, server-to-client) column pairs.
PAIRS: tuple[tuple[str, str], ...] = (
    ("IN_BYTES", "OUT_BYTES"),
    ("IN_PKTS", "OUT_PKTS"),
    ("CLIENT_TCP_FLAGS", "SERVER_TCP_FLAGS"),
    ("DURATION_IN", "DURATION_OUT"),
    ("RETRANSMITTED_IN_BYTES", "RETRANSMITTED_OUT_BYTES"),
    ("RETRANSMITTED_IN_PKTS", "RETRANSMITTED_OUT_PKTS"),
    ("SRC_TO_DST_SECOND_BYTES", "DST_TO_SRC_SECOND_BYTES"),
    ("SRC_TO_DST_AVG_THROUGHPUT", "DST_TO_SRC_AVG_THROUGHPUT"),
    ("TCP_WIN_MAX_IN", "TCP_WIN_MAX_OUT"),
    ("SRC_TO_DST_IAT_MIN", "DST_TO_SRC_IAT_MIN"),
    ("SRC_TO_DST_IAT_MAX", "DST_TO_SRC_IAT_MAX"),
    ("SRC_TO_DST_IAT_AVG", "DST_TO_SRC_IAT_AVG"),
    ("SRC_TO_DST_IAT_STDDEV", "DST_TO_SRC_IAT_STDDEV"),
)
_OUT_SIDE = frozenset(b for _, b in PAIRS)
MIN_COLUMNS = frozenset({"MIN_TTL", "MIN_IP_PKT_LEN", "SHORTEST_FLOW_PKT"})
MAX_COLUMNS = frozenset({"MAX_TTL", "MAX_IP_PKT_LEN", "LONGEST_FLOW_PKT"})
SUM_COLUMNS = frozenset({"NUM_PKTS_UP_TO_128_BYTES", "NUM_PKTS_128_TO_256_BYTES", "NUM_PKTS_256_TO_512_BYTES",
                         "NUM_PKTS_512_TO_1024_BYTES", "NUM_PKTS_1024_TO_1514_BYTES"})
START, END, DURATION = "FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS", "FLOW_DURATION_MILLISECONDS"
#: Working columns a flow keeps until it becomes a frame: the two addresses as
#: 64-bit halves, the arrival time of its first record and its domain's index.
KEY_COLUMNS = ("_SRC_HI", "_SRC_LO", "_DST_HI", "_DST_LO")
ARRIVAL, DOMAIN = "_ARRIVAL", "_DOMAIN"
_ADDRESS_TEXT = {"_SRC": "IPV4_SRC_ADDR", "_DST": "IPV4_DST_ADDR"}
_SCHEMA = get_schema("v3")


def is_one_way(columns) -> bool:
    """A template whose records carry one direction only (no ``OUT`` side, no reverse element)."""
    return not any(c in _OUT_SIDE or c.startswith(REVERSE_PREFIX) for c in columns)


def _reverse_into(c: dict[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """RFC 5103 reverse values into the flow's ``OUT`` side; returns the reverse start and end times."""
    rev = {k[len(REVERSE_PREFIX):]: c.pop(k) for k in [k for k in c if k.startswith(REVERSE_PREFIX)]}
    for own, other in PAIRS:
        if own in rev and other not in c:
            c[other] = rev.pop(own)
    if "TCP_FLAGS" in rev:
        server = rev.pop("TCP_FLAGS")
        if "TCP_FLAGS" in c:
            c.setdefault("CLIENT_TCP_FLAGS", c["TCP_FLAGS"])
            c["TCP_FLAGS"] = c["CLIENT_TCP_FLAGS"] | server
        c.setdefault("SERVER_TCP_FLAGS", server)
    for col in MIN_COLUMNS | MAX_COLUMNS:
        if col in rev:
            pick = np.minimum if col in MIN_COLUMNS else np.maximum
            c[col] = pick(c[col], rev[col]) if col in c else rev[col]
    return rev.get(START), rev.get(END)


def _protocol_fields(c: dict[str, np.ndarray], n: int) -> None:
    proto = c.get("PROTOCOL")
    icmp = np.isin(proto, ICMP_PROTOCOLS) if proto is not None else np.zeros(n, dtype=bool)
    has_ports = "L4_SRC_PORT" in c or "L4_DST_PORT" in c
    code = c.pop("_ICMP_CODE", None)
    v6_type, v6_code = c.pop("_ICMP6_TYPE", None), c.pop("_ICMP6_CODE", None)
    icmp_element = "ICMP_TYPE" in c or "ICMP_IPV4_TYPE" in c or v6_type is not None
    if "ICMP_TYPE" not in c:
        if "ICMP_IPV4_TYPE" in c:
            c["ICMP_TYPE"] = c["ICMP_IPV4_TYPE"] * 256 + (code if code is not None else 0)
        elif v6_type is not None:
            c["ICMP_TYPE"] = v6_type * 256 + (v6_code if v6_code is not None else 0)
        elif "L4_DST_PORT" in c:
            c["ICMP_TYPE"] = np.where(icmp, c["L4_DST_PORT"], 0)
    if "ICMP_IPV4_TYPE" not in c and "ICMP_TYPE" in c and proto is not None:
        c["ICMP_IPV4_TYPE"] = np.where(proto == 1, c["ICMP_TYPE"] >> 8, 0)
    if has_ports:
        for port in ("L4_SRC_PORT", "L4_DST_PORT"):
            if port in c:
                c[port] = np.where(icmp, 0, c[port])
    elif icmp_element:
        c["L4_SRC_PORT"] = np.zeros(n, dtype="int64")
        c["L4_DST_PORT"] = np.zeros(n, dtype="int64")
        c.setdefault("TCP_FLAGS", np.zeros(n, dtype="int64"))


def _times(c: dict[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
    start, end, dur = c.get(START), c.get(END), c.get(DURATION)
    if start is None and end is not None:
        start = end - dur if dur is not None else end
    if end is None and start is not None:
        end = start + dur if dur is not None else start
    if start is not None:
        # Some exporters (softflowd 1.1.0 with -b) send the last time before the first.
        start, end = np.minimum(start, end), np.maximum(start, end)
        c[START], c[END] = start, end
    return start, end


def swap_sides(c: dict[str, np.ndarray], mask: np.ndarray) -> None:
    """Exchange source and destination (addresses, ports, every IN/OUT pair) where ``mask`` is set."""
    if not mask.any():
        return
    pairs = [("_SRC_HI", "_DST_HI"), ("_SRC_LO", "_DST_LO"), ("L4_SRC_PORT", "L4_DST_PORT"), *PAIRS]
    for a, b in pairs:
        if a in c and b in c:
            c[a], c[b] = np.where(mask, c[b], c[a]), np.where(mask, c[a], c[b])


def normalize(batch: RecordBatch) -> tuple[dict[str, np.ndarray], bool]:
    """A record batch as NF flow columns (plus working columns), and whether its records are one-way."""
    c = dict(batch.columns)
    n = len(batch)
    one_way = is_one_way(c)
    rev_start, rev_end = _reverse_into(c)
    _protocol_fields(c, n)
    start, end = _times(c)
    if one_way:
        if start is not None:
            c.setdefault("DURATION_IN", end - start)
        if "TCP_FLAGS" in c:
            c.setdefault("CLIENT_TCP_FLAGS", c["TCP_FLAGS"])
        for own, other in PAIRS:
            if own in c and other not in c:
                c[other] = np.zeros(n, dtype=c[own].dtype)
    elif start is not None and rev_start is not None and rev_end is not None:
        rev_start, rev_end = np.minimum(rev_start, rev_end), np.maximum(rev_start, rev_end)
        c.setdefault("DURATION_IN", end - start)
        c.setdefault("DURATION_OUT", rev_end - rev_start)
        c[START], c[END] = np.minimum(start, rev_start), np.maximum(end, rev_end)
    if c.get(START) is not None:
        c.setdefault(DURATION, c[END] - c[START])
    if not one_way:
        flip = np.zeros(n, dtype=bool)
        if "IN_PKTS" in c and "OUT_PKTS" in c:
            flip |= (c["IN_PKTS"] == 0) & (c["OUT_PKTS"] > 0)
        if start is not None and rev_start is not None:
            flip |= rev_start < start
        swap_sides(c, flip)
    for k in [k for k in c if k.startswith("_") and k not in KEY_COLUMNS]:
        del c[k]
    c[ARRIVAL] = batch.arrival
    c[DOMAIN] = np.full(n, batch.domain.index, dtype="int64")
    return c, one_way


_IPV4_CACHE: dict[int, str] = {}
_IPV4_CACHE_MAX = 1 << 16


def _ipv4_text(value: int) -> str:
    text = _IPV4_CACHE.get(value)
    if text is None:
        if len(_IPV4_CACHE) >= _IPV4_CACHE_MAX:
            _IPV4_CACHE.clear()
        text = _IPV4_CACHE[value] = socket.inet_ntoa(value.to_bytes(4, "big"))
    return text


def address_text(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Addresses as text: IPv4-mapped values as dotted quads, others as IPv6."""
    out = np.empty(len(hi), dtype=object)
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    if v4.any():
        values, inverse = np.unique(lo[v4] & np.uint64(0xFFFFFFFF), return_inverse=True)
        out[v4] = np.array([_ipv4_text(int(v)) for v in values], dtype=object)[inverse]
    if (~v4).any():
        out[~v4] = [socket.inet_ntop(socket.AF_INET6, int(h).to_bytes(8, "big") + int(lo_).to_bytes(8, "big"))
                    for h, lo_ in zip(hi[~v4], lo[~v4])]
    return out


def to_frame(c: dict[str, np.ndarray]) -> pd.DataFrame:
    """NF flow columns (schema order, schema dtypes) from normalized or stitched columns."""
    data: dict[str, np.ndarray] = {}
    for prefix, name in _ADDRESS_TEXT.items():
        if prefix + "_HI" in c:
            data[name] = address_text(c[prefix + "_HI"], c[prefix + "_LO"])
    for col in V3_FEATURES:
        if col in data or col not in c:
            continue
        kind = _SCHEMA.dtype(col)
        data[col] = c[col].astype("float64" if kind == "float64" else "int64", copy=False)
    ordered = [col for col in V3_FEATURES if col in data]
    # Addresses stay Python strings (dtype object), as in metered frames, not pandas' string dtype.
    return pd.DataFrame({col: pd.Series(data[col], dtype=object) if col in _ADDRESS_TEXT.values() else data[col]
                         for col in ordered})


def concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Column dicts with the same keys, one after the other."""
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def to_frames(parts: list[dict[str, np.ndarray]]) -> list[tuple[pd.DataFrame, np.ndarray]]:
    """Flow columns from several sources as frames, one per column set, each with its flows' arrival times."""
    groups: dict[tuple[str, ...], list[dict[str, np.ndarray]]] = {}
    for cols in parts:
        groups.setdefault(tuple(cols), []).append(cols)
    out = []
    for same in groups.values():
        cols = concat_columns(same)
        out.append((to_frame(cols), cols[ARRIVAL]))
    return out


def template_flow_columns(domain: Domain, template: Template) -> list[str]:
    """The NF columns of the flows a data template's records become, in schema order."""
    records = template.decode(bytes(template.record_length), 0, template.record_length)
    batch = records_from_chunks([Chunk(template, domain, records, 0, 0, 0.0)], apply_sampling=False)[0]
    cols, _ = normalize(batch)
    return list(to_frame(cols).columns)

