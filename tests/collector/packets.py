"""Hand-made NetFlow v5, v9 and IPFIX datagrams for the collector tests, built field by field with struct."""

from __future__ import annotations

import socket
import struct

EXPORT_SECS = 1_700_000_000


def ip(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)


def v5(records: list[dict], *, uptime: int = 10_000, secs: int = EXPORT_SECS, seq: int = 0, sampling: int = 0,
       count: int | None = None) -> bytes:
    """A v5 datagram; each record: src, dst, sport, dport, proto, pkts, bytes, flags, first, last (uptime ms)."""
    n = len(records) if count is None else count
    head = struct.pack("!HHIIIIBBH", 5, n, uptime, secs, 0, seq, 0, 0, sampling)
    body = b"".join(struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", ip(r["src"]), ip(r["dst"]), bytes(4), 0, 0, r["pkts"],
                                r["bytes"], r["first"], r["last"], r["sport"], r["dport"], 0, r.get("flags", 0),
                                r["proto"], 0, 0, 0, 0, 0, 0) for r in records)
    return head + body


def field_specs(fields: list[tuple], *, ipfix: bool) -> bytes:
    """(id, length) or (id, length, pen) field specifiers."""
    out = b""
    for f in fields:
        fid, length, pen = (f + (0,))[:3]
        if pen and ipfix:
            out += struct.pack("!HHI", fid | 0x8000, length, pen)
        else:
            out += struct.pack("!HH", fid, length)
    return out


def template_record(tid: int, fields: list[tuple], *, ipfix: bool) -> bytes:
    return struct.pack("!HH", tid, len(fields)) + field_specs(fields, ipfix=ipfix)


def options_template_record(tid: int, scope: list[tuple], options: list[tuple], *, ipfix: bool) -> bytes:
    if ipfix:
        return struct.pack("!HHH", tid, len(scope) + len(options), len(scope)) + field_specs(scope + options, ipfix=True)
    return (struct.pack("!HHH", tid, 4 * len(scope), 4 * len(options))
            + field_specs(scope, ipfix=False) + field_specs(options, ipfix=False))


def set_(set_id: int, body: bytes, *, pad_to: int = 4) -> bytes:
    pad = (-len(body)) % pad_to
    return struct.pack("!HH", set_id, 4 + len(body) + pad) + body + b"\0" * pad


def v9(sets: list[bytes], *, uptime: int = 10_000, secs: int = EXPORT_SECS, seq: int = 0, source_id: int = 0) -> bytes:
    return struct.pack("!HHIIII", 9, len(sets), uptime, secs, seq, source_id) + b"".join(sets)


def ipfix(sets: list[bytes], *, secs: int = EXPORT_SECS, seq: int = 0, domain: int = 0,
          length: int | None = None) -> bytes:
    body = b"".join(sets)
    total = 16 + len(body) if length is None else length
    return struct.pack("!HHIII", 10, total, secs, seq, domain) + body


def uint(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


# softflowd's IPv4 template (v9 and IPFIX, template 1024), as it sends it.
SOFTFLOWD_V4 = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (10, 4), (14, 4), (61, 1), (136, 1), (7, 2), (11, 2),
                (4, 1), (6, 1), (60, 1), (5, 1)]


def softflowd_record(src, dst, first, last, nbytes, pkts, sport, dport, proto=6, flags=0) -> bytes:
    return (ip(src) + ip(dst) + struct.pack("!IIIIII", first, last, nbytes, pkts, 0, 0)
            + struct.pack("!BBHHBBBB", 0, 2, sport, dport, proto, flags, 4, 0))
