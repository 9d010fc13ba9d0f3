"""What the collector decoded, beside what nfdump stored from the same datagrams, field by field.

Both sides are reduced to the same rows, one per exporter record (before
stitching, so that they compare with nfdump's one-way records):
``proto, src, sport, dst, dport, icmp, ipkt, ibyt, opkt, obyt, flags,
first, last`` where ``icmp`` is type x 256 + code for ICMP records (their
ports 0) and ``first``/``last`` are Unix milliseconds. The collector's rows
carry the TCP flags of both directions, ``(forward, reverse)``, reverse -1
for one-way records. :func:`golden_record` is one capture's golden file:
nfdump's answer for every softflowd export of it. :func:`differences`
compares, allowing for four things nfdump 1.7.1 (Debian's) does
differently, each visible in its output:

* IPFIX ``flowStartSysUpTime``/``flowEndSysUpTime`` (22/21) are stored as
  last/first, interchanged (nfdump issue 408, fixed after 1.7.1);
* a time whose uptime value is 0 is stored as 0 (1970-01-01);
* an uptime ahead of the header's ``sysUpTime`` (softflowd's file-mode
  clock sends some) is read as a wrap of the 32-bit counter, 2**32 ms
  (49.7 days) earlier; the collector reads the difference as signed, so
  that an exporter's clock jitter of a few milliseconds does not move a
  flow seven weeks back (:mod:`flowsentinel.collector.records`);
* nfdump keeps one flags byte per record, and for an RFC 5103 biflow it
  holds the reverse direction's ``tcpControlBits`` (the template's last).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .decoder import Decoder
from .elements import REVERSE_PREFIX
from .flows import address_text
from .nfdump import flags_value
from .peers import EXPORTS, nfcapd_collect, softflowd_export
from .records import RecordBatch, records_from_chunks

__all__ = ["ROW_FIELDS", "MAX_GOLDEN_ROWS", "decoded_rows", "nfdump_rows", "golden_record", "decode_datagrams",
           "differences", "digest"]

ROW_FIELDS = ["proto", "src", "sport", "dst", "dport", "icmp", "ipkt", "ibyt", "opkt", "obyt", "flags",
              "first", "last"]
_KEY = len(ROW_FIELDS) - 3
# Equal, or apart by one wrap of a 32-bit millisecond uptime (see the module notes).
_SAME_TIME = (0, 1 << 32)
_EPOCH = np.datetime64("1970-01-01T00:00:00", "ms")


def decode_datagrams(datagrams: list[bytes], exporter: str = "127.0.0.1") -> list[RecordBatch]:
    """The record batches the collector's decoder makes of recorded datagrams (nothing stitched)."""
    decoder = Decoder()
    for data in datagrams:
        decoder.feed(data, exporter, 0.0)
    return records_from_chunks(decoder.take())


def _batch_rows(batch: RecordBatch) -> list[list]:
    c, n = batch.columns, len(batch)
    zeros = np.zeros(n, dtype="int64")
    proto = c.get("PROTOCOL", zeros)
    icmp = np.isin(proto, (1, 58))
    sport, dport = c.get("L4_SRC_PORT", zeros), c.get("L4_DST_PORT", zeros)
    icmp_tc = np.where(icmp, c["ICMP_TYPE"] if "ICMP_TYPE" in c else dport, 0)
    flags = zip(c.get("TCP_FLAGS", zeros).tolist(), c.get(REVERSE_PREFIX + "TCP_FLAGS", zeros - 1).tolist())
    columns = [
        proto.tolist(), address_text(c["_SRC_HI"], c["_SRC_LO"]).tolist(), np.where(icmp, 0, sport).tolist(),
        address_text(c["_DST_HI"], c["_DST_LO"]).tolist(), np.where(icmp, 0, dport).tolist(), icmp_tc.tolist(),
        c.get("IN_PKTS", zeros).tolist(), c.get("IN_BYTES", zeros).tolist(),
        c.get("OUT_PKTS", c.get(REVERSE_PREFIX + "IN_PKTS", zeros)).tolist(),
        c.get("OUT_BYTES", c.get(REVERSE_PREFIX + "IN_BYTES", zeros)).tolist(), list(flags),
        c.get("FLOW_START_MILLISECONDS", zeros).tolist(), c.get("FLOW_END_MILLISECONDS", zeros).tolist(),
    ]
    return [list(row) for row in zip(*columns)]


def decoded_rows(datagrams: list[bytes]) -> tuple[list[list], bool]:
    """The collector's rows for recorded datagrams, sorted, and whether IPFIX uptimes time any of them."""
    batches = decode_datagrams(datagrams)
    uptimes = any(b.template.version == 10 and any(s.type == "uptime" for s in b.template.slots) for b in batches)
    return sorted(r for b in batches for r in _batch_rows(b)), uptimes


def digest(rows: list[list], *, decoded: bool) -> str:
    """A digest of rows without their times (for captures too large to keep every row of)."""
    canon = []
    for r in rows:
        flags = r[_KEY]
        if decoded:
            flags = flags[1] if flags[1] >= 0 else flags[0]
        canon.append([*r[:_KEY], flags])
    return hashlib.sha256(json.dumps(sorted(canon)).encode()).hexdigest()


def _ms(text: str) -> int:
    return int((np.datetime64(text, "ms") - _EPOCH).astype("int64"))


def nfdump_rows(records: list[dict]) -> list[list]:
    """nfdump's rows for its ``-o json`` records, sorted like :func:`decoded_rows`."""
    rows = []
    for r in records:
        proto = int(r.get("proto", 0))
        icmp = proto in (1, 58)
        first, last = _ms(r["first"]), _ms(r["last"])
        row = [
            proto, r.get("src4_addr") or r.get("src6_addr"), 0 if icmp else int(r.get("src_port", 0)),
            r.get("dst4_addr") or r.get("dst6_addr"), 0 if icmp else int(r.get("dst_port", 0)),
            int(r.get("icmp_type", 0)) * 256 + int(r.get("icmp_code", 0)) if icmp else 0,
            int(r.get("in_packets", 0)), int(r.get("in_bytes", 0)), int(r.get("out_packets", 0)),
            int(r.get("out_bytes", 0)), flags_value(r.get("tcp_flags", "")), first, last,
        ]
        rows.append(row)
    return sorted(rows)


def differences(decoded: list[list], answer: list[list], *, ipfix_uptimes: bool, limit: int = 10) -> list[str]:
    """What differs between the collector's rows and nfdump's, beyond nfdump 1.7.1's two time quirks."""
    ours: dict[tuple, list[tuple[int, int, int]]] = {}
    theirs: dict[tuple, list[tuple[int, int, int]]] = {}
    for r in decoded:
        forward, reverse = r[_KEY]
        ours.setdefault(tuple(r[:_KEY]), []).append((reverse if reverse >= 0 else forward, r[_KEY + 1], r[_KEY + 2]))
    for r in answer:
        first, last = (r[_KEY + 2], r[_KEY + 1]) if ipfix_uptimes else (r[_KEY + 1], r[_KEY + 2])
        theirs.setdefault(tuple(r[:_KEY]), []).append((r[_KEY], first, last))
    out = []
    for key in sorted(ours.keys() | theirs.keys(), key=str):
        a, b = ours.get(key, []), theirs.get(key, [])
        what = dict(zip(ROW_FIELDS, key))
        if len(a) != len(b):
            out.append(f"{what}: {len(a)} decoded, {len(b)} in nfdump")
            continue
        for (f1, s1, e1), (f2, s2, e2) in zip(sorted(a), sorted(b)):
            if f1 != f2:
                out.append(f"{what}: flags {f1} decoded, {f2} in nfdump")
            if (s2 and s1 - s2 not in _SAME_TIME) or (e2 and e1 - e2 not in _SAME_TIME):
                out.append(f"{what}: times {s1}-{e1} decoded, {s2}-{e2} in nfdump")
    return out[:limit]


#: Exports with more records than this keep a digest and totals in the golden file, not every row.
MAX_GOLDEN_ROWS = 1000


def golden_record(capture: str | os.PathLike, root: str | os.PathLike) -> dict:
    """One capture's golden file: for each softflowd export, nfdump's rows for the same datagrams."""
    capture, root = Path(capture), Path(root)
    exports = {}
    for name, options in EXPORTS.items():
        export = softflowd_export(capture, options)
        records, summary = nfcapd_collect(export.datagrams)
        rows = nfdump_rows(records)
        entry = {"softflowd": " ".join(options), "nfcapd": summary, "records": len(rows),
                 "packets": sum(r[6] + r[8] for r in rows), "bytes": sum(r[7] + r[9] for r in rows)}
        if len(rows) <= MAX_GOLDEN_ROWS:
            entry["rows"] = rows
        else:
            entry["digest"] = digest(rows, decoded=False)
        exports[name] = entry
    return {"capture": capture.relative_to(root).as_posix(), "fields": ROW_FIELDS, "exports": exports}
