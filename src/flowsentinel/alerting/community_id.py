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

import binascii
import ipaddress

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["community_id", "community_id_array", "community_ids", "PORTED_PROTOCOLS", "sha1_short"]

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


def _packed(values: np.ndarray, factors=None) -> tuple[np.ndarray, list[bytes | None]]:
    """Codes into a list of packed addresses (``None`` where a value is no IP address).

    ``factors``: the values as codes into their distinct values, where the caller has them.
    """
    if factors is None:
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    else:
        codes, uniques = factors
    packed: list[bytes | None] = []
    for u in uniques:
        try:
            packed.append(ipaddress.ip_address(str(u).strip()).packed)
        except ValueError:
            packed.append(None)
    return codes, packed


def _address_table(packed: list[bytes | None], width: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct addresses' bytes ``(n_distinct + 1, width)`` (last row: missing) and which have that width."""
    table = np.zeros((len(packed) + 1, width), dtype=np.uint8)
    ok = np.zeros(len(packed) + 1, dtype=bool)
    for i, p in enumerate(packed):
        if p is not None and len(p) == width:
            table[i] = np.frombuffer(p, dtype=np.uint8)
            ok[i] = True
    return table, ok


def _lexical_less(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``a < b`` and ``a == b`` over byte matrices, as bytes compare."""
    diff = a != b
    equal = ~diff.any(axis=1)
    first = np.argmax(diff, axis=1)
    rows = np.arange(len(a))
    less = (a[rows, first] < b[rows, first]) & ~equal
    return less, equal


def _base64_text(digests: np.ndarray) -> bytes:
    """``1:`` and the base64 of each 20-byte row, 30 ASCII bytes a row, end to end.

    Each digest gets one zero byte (21 bytes encode to 28 characters with
    no padding between rows), so the whole column is one ``binascii`` call;
    a lone 20-byte digest ends in ``=`` where the zero byte gave ``A``.
    """
    n = len(digests)
    padded = np.zeros((n, 21), dtype=np.uint8)
    padded[:, :20] = digests
    encoded = np.frombuffer(binascii.b2a_base64(padded.tobytes(), newline=False), dtype=np.uint8).reshape(n, 28)
    text = np.empty((n, 30), dtype=np.uint8)
    text[:, :2] = np.frombuffer(b"1:", dtype=np.uint8)
    text[:, 2:] = encoded
    text[:, 29] = ord("=")
    return text.tobytes()


def _base64_digests(digests: np.ndarray) -> np.ndarray:
    """:func:`_base64_text` as Python strings."""
    n = len(digests)
    # One decode of all the text, then slices: faster than numpy's bytes-to-str conversions.
    whole = _base64_text(digests).decode("ascii")
    out = np.empty(n, dtype=object)
    out[:] = [whole[i:i + 30] for i in range(0, 30 * n, 30)]
    return out


def community_ids(src, dst, proto, sport, dport, seed: int = 0, factors=None) -> np.ndarray:
    """Community ID v1 of every flow, as an object array (``None`` where an address is missing or invalid).

    ``src``/``dst`` are address strings (IPv4 or IPv6), ``proto`` the IP
    protocol numbers; for ICMP and ICMPv6 flows ``sport`` is the ICMP type
    and ``dport`` the code. Addresses of mixed families never hash.
    ``factors``: ``(src, dst)``, each the column as codes into its distinct
    values (``pd.factorize``'s answer) or ``None``, where the caller has them.
    """
    out = np.full(len(proto), None, dtype=object)
    for rows, digests in _digests(src, dst, proto, sport, dport, seed, factors):
        out[rows] = _base64_digests(digests)
    return out


def community_id_array(src, dst, proto, sport, dport, seed: int = 0, factors=None):
    """:func:`community_ids` as a pyarrow string array (null where there is none), without a Python string a flow."""
    import pyarrow as pa

    n = len(proto)
    valid = np.zeros(n, dtype=bool)
    text = np.zeros((n, 30), dtype=np.uint8)
    for rows, digests in _digests(src, dst, proto, sport, dport, seed, factors):
        valid[rows] = True
        text[rows] = np.frombuffer(_base64_text(digests), dtype=np.uint8).reshape(-1, 30)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(valid * 30, out=offsets[1:])
    data = pa.py_buffer(text[valid].tobytes())
    mask = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), data, mask)


def _digests(src, dst, proto, sport, dport, seed: int, factors):
    """``(rows, SHA-1 digests)`` for the flows that hash, one pair per address width."""
    if not 0 <= int(seed) <= 0xFFFF:
        raise ConfigError(f"community_id_seed must be from 0 to 65535, got {seed!r}")
    proto = np.asarray(proto, dtype=np.int64)
    n = len(proto)
    if n == 0:
        return
    sport = np.asarray(sport, dtype=np.int64).copy()
    dport = np.asarray(dport, dtype=np.int64).copy()
    one_way = np.zeros(n, dtype=bool)
    for icmp, table in _COUNTERPART_TABLES.items():
        rows = proto == icmp
        if rows.any():
            other = table[np.clip(sport[rows], 0, 255)]
            one_way[rows] = other < 0
            dport[rows] = np.where(other < 0, dport[rows], other)
    s_factors, d_factors = factors if factors is not None else (None, None)
    s_codes, s_packed = _packed(src, s_factors)
    d_codes, d_packed = _packed(dst, d_factors)
    s_idx = np.where(s_codes < 0, len(s_packed), s_codes)
    d_idx = np.where(d_codes < 0, len(d_packed), d_codes)
    seed_bytes = np.frombuffer(int(seed).to_bytes(2, "big"), dtype=np.uint8)
    for width in (4, 16):
        s_table, s_ok = _address_table(s_packed, width)
        d_table, d_ok = _address_table(d_packed, width)
        if not (s_ok.any() and d_ok.any()):
            continue
        rows = np.flatnonzero(s_ok[s_idx] & d_ok[d_idx])
        if len(rows) == 0:
            continue
        si, di, sp, dp = s_idx[rows], d_idx[rows], sport[rows], dport[rows]
        if width == 4:  # big-endian integers compare as their bytes do
            sa, da = s_table.view(">u4").ravel()[si], d_table.view(">u4").ravel()[di]
            less, equal = sa < da, sa == da
        else:
            sa, da = s_table[si], d_table[di]
            less, equal = _lexical_less(sa, da)
        keep = one_way[rows] | less | (equal & (sp < dp))
        if width == 4:
            first = np.where(keep, sa, da).astype(">u4").view(np.uint8).reshape(-1, 4)
            second = np.where(keep, da, sa).astype(">u4").view(np.uint8).reshape(-1, 4)
        else:
            first = np.where(keep[:, None], sa, da)
            second = np.where(keep[:, None], da, sa)
        ports = np.empty((len(rows), 2), dtype=">u2")  # each port's two low bytes, big-endian
        ports[:, 0] = np.where(keep, sp, dp) & 0xFFFF
        ports[:, 1] = np.where(keep, dp, sp) & 0xFFFF
        ported = np.isin(proto[rows], PORTED_PROTOCOLS)
        length = 2 + 2 * width + 2 + 4
        buf = np.zeros((len(rows), length), dtype=np.uint8)
        buf[:, 0:2] = seed_bytes
        buf[:, 2:2 + width] = first
        buf[:, 2 + width:2 + 2 * width] = second
        buf[:, 2 + 2 * width] = proto[rows] & 0xFF
        buf[:, length - 4:] = ports.view(np.uint8)
        sizes = np.where(ported, length, length - 4)
        yield rows, sha1_short(buf, sizes)


def _rotl(x: np.ndarray, s: int) -> np.ndarray:
    return (x << np.uint32(s)) | (x >> np.uint32(32 - s))


# SHA-1 over ``_SHA1_ROWS`` messages at a time: the working arrays (about 10 of them) stay in the
# CPU caches; 16,384 rows took 0.36 us a message on the shared 2-core Xeon, 4,096 and 65,536 more.
_SHA1_ROWS = 16_384
_SHA1_K = (0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6)
_SHA1_H = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)


def sha1_short(messages: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """SHA-1 digests ``(n, 20)`` of each row's first ``sizes[i]`` bytes (at most 55: one block), column-wise.

    The Community ID's messages are 12 to 40 bytes, so each fits one
    64-byte SHA-1 block and the 80 rounds run over all rows at once as
    numpy ``uint32`` arithmetic (wrapping, as SHA-1's additions do),
    instead of one ``hashlib`` call per flow; the digests are the same
    (``tests/test_alerts.py`` compares them with :mod:`hashlib`).

    >>> import hashlib
    >>> m = np.frombuffer(b"abc" + bytes(5), dtype=np.uint8).reshape(1, 8)
    >>> sha1_short(m, np.array([3])).tobytes() == hashlib.sha1(b"abc").digest()
    True
    """
    messages = np.asarray(messages, dtype=np.uint8)
    sizes = np.asarray(sizes, dtype=np.int64)
    n, width = messages.shape
    if n and (sizes.max() > 55 or sizes.min() < 0 or sizes.max() > width):
        raise ValueError("sha1_short hashes messages of 0 to 55 bytes (one SHA-1 block) within the rows given")
    blocks = np.zeros((n, 64), dtype=np.uint8)
    blocks[:, :width] = messages[:, :64]
    blocks *= np.arange(64)[None, :] < sizes[:, None]  # bytes past each message: zero
    blocks[np.arange(n), sizes] = 0x80
    bits = sizes * 8
    blocks[:, 62] = (bits >> 8) & 0xFF
    blocks[:, 63] = bits & 0xFF
    words = blocks.view(">u4").astype(np.uint32)  # (n, 16), native order
    out = np.empty((n, 5), dtype=np.uint32)
    for start in range(0, n, _SHA1_ROWS):
        out[start:start + _SHA1_ROWS] = _sha1_rounds(words[start:start + _SHA1_ROWS])
    return out.astype(">u4").view(np.uint8).reshape(n, 20)


def _sha1_rounds(words: np.ndarray) -> np.ndarray:
    """The 80 rounds of SHA-1 over one padded block per row (``words``: ``(n, 16)`` uint32)."""
    w = [np.ascontiguousarray(words[:, i]) for i in range(16)]
    n = len(words)
    a, b, c, d, e = (np.full(n, h, dtype=np.uint32) for h in _SHA1_H)
    f = np.empty(n, dtype=np.uint32)
    for t in range(80):
        if t >= 16:
            x = w[(t - 3) % 16] ^ w[(t - 8) % 16]
            x ^= w[(t - 14) % 16]
            x ^= w[t % 16]
            w[t % 16] = _rotl(x, 1)
        if t < 20:  # (b & c) | (~b & d), as d ^ (b & (c ^ d))
            np.bitwise_xor(c, d, out=f)
            f &= b
            f ^= d
        elif 40 <= t < 60:  # majority, as (b & c) | (d & (b | c))
            np.bitwise_or(b, c, out=f)
            f &= d
            f |= b & c
        else:
            np.bitwise_xor(b, c, out=f)
            f ^= d
        temp = _rotl(a, 5)
        temp += f
        temp += e
        temp += np.uint32(_SHA1_K[t // 20])
        temp += w[t % 16]
        a, b, c, d, e = temp, a, _rotl(b, 30), c, d
    return np.stack([a, b, c, d, e], axis=1) + np.asarray(_SHA1_H, dtype=np.uint32)


def community_id(src: str, dst: str, proto: int, sport: int | None = None, dport: int | None = None,
                 seed: int = 0) -> str | None:
    """Community ID v1 of one flow (``sport``/``dport`` ignored for protocols without ports)."""
    return community_ids([src], [dst], [proto], [sport or 0], [dport or 0], seed)[0]
