"""Community ID v1 flow hashes (corelight/community-id-spec), for whole columns at once.

The hash is SHA-1 over: the 2-byte seed, the two addresses and ports in a
canonical order (so both directions of a flow hash alike), the IP protocol
number and one zero byte; ports are hashed only for TCP, UDP, SCTP, ICMP and
ICMPv6. For ICMP the "ports" are the type and the type's counterpart
(echo request and reply hash alike); a type without a counterpart hashes
its type and code and keeps the direction it was seen in. The result is
``1:`` and the base64 digest.

Suricata, Zeek, Wireshark and Elastic write the same value, so an analyst
can pivot from a flowsentinel alert to those tools' records of the same flow.

>>> community_id("1.2.3.4", "5.6.7.8", 6, 1122, 3344)
'1:wCb3OG7yAFWelaUydu0D+125CLM='
>>> community_id("5.6.7.8", "1.2.3.4", 6, 3344, 1122, seed=1)
'1:HhA1B+6CoLbiKPEs5nhNYN4XWfk='
>>> community_id("10.0.0.1", "not an address", 6, 1, 2) is None
True
"""

from __future__ import annotations

import hashlib
import ipaddress

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["community_id", "community_ids", "PORTED_PROTOCOLS"]

#: Protocols whose ports (ICMP: type and counterpart) enter the hash.
PORTED_PROTOCOLS = (1, 6, 17, 58, 132)
_ICMP4, _ICMP6 = 1, 58
# Type -> counterpart type, from the spec's reference implementation (after
# Zeek's ICMP4_counterpart / ICMP6_counterpart); -1: no counterpart, one-way.
_COUNTERPART = {
    _ICMP4: {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 17: 18, 18: 17},
    _ICMP6: {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
             139: 140, 140: 139, 144: 145, 145: 144},
}
_COUNTERPART_TABLES = {}
for _proto, _pairs in _COUNTERPART.items():
    _table = np.full(256, -1, dtype=np.int64)
    for _type, _other in _pairs.items():
        _table[_type] = _other
    _COUNTERPART_TABLES[_proto] = _table
_B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8)


def _packed(values: np.ndarray) -> tuple[np.ndarray, list[bytes | None]]:
    """Codes into a list of packed addresses (``None`` where a value is no IP address)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    packed: list[bytes | None] = []
    for u in uniques:
        try:
            packed.append(ipaddress.ip_address(str(u).strip()).packed)
        except ValueError:
            packed.append(None)
    return codes, packed


def _address_matrix(codes: np.ndarray, packed: list[bytes | None], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of address bytes ``(n, width)`` and whether each row has an address of that width."""
    table = np.zeros((len(packed) + 1, width), dtype=np.uint8)  # last row: missing
    ok = np.zeros(len(packed) + 1, dtype=bool)
    for i, p in enumerate(packed):
        if p is not None and len(p) == width:
            table[i] = np.frombuffer(p, dtype=np.uint8)
            ok[i] = True
    idx = np.where(codes < 0, len(packed), codes)
    return table[idx], ok[idx]


def _lexical_less(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``a < b`` and ``a == b`` over byte matrices, as bytes compare."""
    diff = a != b
    equal = ~diff.any(axis=1)
    first = np.argmax(diff, axis=1)
    rows = np.arange(len(a))
    less = (a[rows, first] < b[rows, first]) & ~equal
    return less, equal


def _base64_digests(digests: np.ndarray) -> np.ndarray:
    """Base64 of each 20-byte row, as Python strings, with the ``1:`` prefix."""
    n = len(digests)
    padded = np.zeros((n, 21), dtype=np.uint32)
    padded[:, :20] = digests
    groups = padded.reshape(n, 7, 3)
    word = (groups[:, :, 0] << 16) | (groups[:, :, 1] << 8) | groups[:, :, 2]
    sextets = np.stack([(word >> s) & 0x3F for s in (18, 12, 6, 0)], axis=2).reshape(n, 28)
    chars = _B64[sextets]
    chars[:, 27] = ord("=")  # 20 bytes leave one padding character
    text = np.empty((n, 30), dtype=np.uint8)
    text[:, :2] = np.frombuffer(b"1:", dtype=np.uint8)
    text[:, 2:] = chars
    return text.view("S30").ravel().astype(str)


def community_ids(src, dst, proto, sport, dport, seed: int = 0) -> np.ndarray:
    """Community ID v1 of every flow, as an object array (``None`` where an address is missing or invalid).

    ``src``/``dst`` are address strings (IPv4 or IPv6), ``proto`` the IP
    protocol numbers; for ICMP and ICMPv6 flows ``sport`` is the ICMP type
    and ``dport`` the code. Addresses of mixed families never hash.
    """
    if not 0 <= int(seed) <= 0xFFFF:
        raise ConfigError(f"community_id_seed must be from 0 to 65535, got {seed!r}")
    proto = np.asarray(proto, dtype=np.int64)
    n = len(proto)
    out = np.full(n, None, dtype=object)
    if n == 0:
        return out
    sport = np.asarray(sport, dtype=np.int64).copy()
    dport = np.asarray(dport, dtype=np.int64).copy()
    one_way = np.zeros(n, dtype=bool)
    for icmp, table in _COUNTERPART_TABLES.items():
        rows = proto == icmp
        if rows.any():
            other = table[np.clip(sport[rows], 0, 255)]
            one_way[rows] = other < 0
            dport[rows] = np.where(other < 0, dport[rows], other)
    s_codes, s_packed = _packed(np.asarray(src, dtype=object))
    d_codes, d_packed = _packed(np.asarray(dst, dtype=object))
    seed_bytes = np.frombuffer(int(seed).to_bytes(2, "big"), dtype=np.uint8)
    for width in (4, 16):
        s_addr, s_ok = _address_matrix(s_codes, s_packed, width)
        d_addr, d_ok = _address_matrix(d_codes, d_packed, width)
        rows = np.flatnonzero(s_ok & d_ok)
        if len(rows) == 0:
            continue
        sa, da, sp, dp = s_addr[rows], d_addr[rows], sport[rows], dport[rows]
        less, equal = _lexical_less(sa, da)
        keep = one_way[rows] | less | (equal & (sp < dp))
        first = np.where(keep[:, None], sa, da)
        second = np.where(keep[:, None], da, sa)
        p1, p2 = np.where(keep, sp, dp), np.where(keep, dp, sp)
        ported = np.isin(proto[rows], PORTED_PROTOCOLS)
        length = 2 + 2 * width + 2 + 4
        buf = np.zeros((len(rows), length), dtype=np.uint8)
        buf[:, 0:2] = seed_bytes
        buf[:, 2:2 + width] = first
        buf[:, 2 + width:2 + 2 * width] = second
        buf[:, 2 + 2 * width] = proto[rows] & 0xFF
        ports = np.stack([p1 >> 8, p1, p2 >> 8, p2], axis=1) & 0xFF
        buf[:, length - 4:] = ports
        raw = buf.tobytes()
        digests = bytearray()
        for i, with_ports in enumerate(ported.tolist()):
            start = i * length
            digests += hashlib.sha1(raw[start:start + (length if with_ports else length - 4)]).digest()
        out[rows] = _base64_digests(np.frombuffer(bytes(digests), dtype=np.uint8).reshape(-1, 20))
    return out


def community_id(src: str, dst: str, proto: int, sport: int | None = None, dport: int | None = None,
                 seed: int = 0) -> str | None:
    """Community ID v1 of one flow (``sport``/``dport`` ignored for protocols without ports)."""
    return community_ids([src], [dst], [proto], [sport or 0], [dport or 0], seed)[0]
