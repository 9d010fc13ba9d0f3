"""nfstream plugin that computes the NF v2 fields nfstream does not give.

nfstream keeps per-direction packet and byte counters, first/last-seen times
and the nDPI classification. Everything else an NF v2 row needs (TTL range,
TCP flags per direction, window maxima, the packet-size histogram,
retransmissions, ICMP, DNS and FTP fields) is computed here from each
packet's IP header and payload, in one plugin so that each packet costs one
Python call. The plugin runs inside nfstream's meter process; at expiry it
packs the finished NF v2 row into ``flow.udps.nf_row`` so the parent process
only has to collect tuples.

The meaning and unit of each field are in ``docs/metering.md``.
"""

from __future__ import annotations

from struct import unpack_from

from nfstream import NFPlugin

__all__ = ["NFv2Fields", "ROW_COLUMNS", "l7_proto_value"]

# Order of the tuple left in ``flow.udps.nf_row``: the NF v2 features, then the
# time columns, then the link-layer byte counts.
from flowsentinel.schema import ICMP_PROTOCOLS, TIME_COLUMNS, V2_FEATURES

ROW_COLUMNS: tuple[str, ...] = tuple(V2_FEATURES) + tuple(TIME_COLUMNS) + ("IN_L2_BYTES", "OUT_L2_BYTES")

# Indexes into the per-flow state list (a list is cheaper than attributes).
_MIN_TTL, _MAX_TTL, _MIN_LEN, _MAX_LEN = 0, 1, 2, 3
_FLAGS_C, _FLAGS_S, _WIN_IN, _WIN_OUT = 4, 5, 6, 7
_HIST = 8  # five bins: 8..12
_RTX_IN_B, _RTX_IN_P, _RTX_OUT_B, _RTX_OUT_P = 13, 14, 15, 16
_SEQ_END_IN, _SEQ_END_OUT = 17, 18
_ICMP, _DNS_ID, _DNS_QTYPE, _DNS_TTL, _FTP = 19, 20, 21, 22, 23
_L2_IN, _L2_OUT = 24, 25

_TCP, _UDP = 6, 17
_ICMP4, _ICMP6 = ICMP_PROTOCOLS
_DNS_PORT, _FTP_PORT = 53, 21


def l7_proto_value(master: int, app: int) -> float:
    """nDPI's protocol pair as the NF datasets write it: ``master.app``.

    >>> l7_proto_value(0, 7), l7_proto_value(5, 126), l7_proto_value(91, 178)
    (7.0, 5.126, 91.178)
    >>> l7_proto_value(7, 7), l7_proto_value(0, 0)
    (7.0, 0.0)
    """
    if master and app and master != app:
        return float(f"{master}.{app}")
    return float(master or app)


def _skip_dns_name(buf: bytes, off: int, end: int) -> int:
    """Offset just past a (possibly compressed) DNS name; -1 if malformed."""
    for _ in range(128):
        if off >= end:
            return -1
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += n + 1
    return -1


def _dns(st: list, buf: bytes, off: int, end: int) -> None:
    """Fill query id/type and the first answer's TTL from one DNS message."""
    if end - off < 12:
        return
    qid, flags, qdcount, ancount = unpack_from(">HHHH", buf, off)
    if st[_DNS_ID] is None:
        st[_DNS_ID] = qid
    pos = off + 12
    for i in range(qdcount):
        pos = _skip_dns_name(buf, pos, end)
        if pos < 0 or pos + 4 > end:
            return
        if i == 0 and st[_DNS_QTYPE] is None:
            st[_DNS_QTYPE] = unpack_from(">H", buf, pos)[0]
        pos += 4
    if flags & 0x8000 and ancount and st[_DNS_TTL] is None:
        pos = _skip_dns_name(buf, pos, end)
        if 0 <= pos and pos + 8 <= end:
            st[_DNS_TTL] = unpack_from(">I", buf, pos + 4)[0]


def _update(st: list, pkt) -> None:
    ip = pkt.ip_packet
    size = pkt.ip_size
    out = pkt.direction  # 0: src->dst (IN), 1: dst->src (OUT)
    if out:
        st[_L2_OUT] += pkt.raw_size
    else:
        st[_L2_IN] += pkt.raw_size
    if size < st[_MIN_LEN]:
        st[_MIN_LEN] = size
    if size > st[_MAX_LEN]:
        st[_MAX_LEN] = size
    # nProbe's histogram bins: <=128, 129-256, 257-512, 513-1024, >1024.
    if size <= 128:
        st[8] += 1
    elif size <= 256:
        st[9] += 1
    elif size <= 512:
        st[10] += 1
    elif size <= 1024:
        st[11] += 1
    else:
        st[12] += 1
    if len(ip) < 20:
        return
    proto = pkt.protocol
    if pkt.ip_version == 4:
        ttl = ip[8]
        ihl = (ip[0] & 0x0F) * 4
        if (ip[6] & 0x1F) or ip[7]:  # a non-first fragment carries no L4 header
            ihl = -1
    else:
        ttl = ip[7]
        # With extension headers the L4 offset is unknown; L4 fields are skipped.
        ihl = 40 if len(ip) >= 40 and ip[6] == proto else -1
    if ttl < st[_MIN_TTL]:
        st[_MIN_TTL] = ttl
    if ttl > st[_MAX_TTL]:
        st[_MAX_TTL] = ttl
    if ihl < 0:
        return
    if proto == _TCP:
        if len(ip) < ihl + 20:
            return
        seq = unpack_from(">I", ip, ihl + 4)[0]
        doff = (ip[ihl + 12] >> 4) * 4
        flags = ip[ihl + 13]
        win = unpack_from(">H", ip, ihl + 14)[0]
        payload = size - ihl - doff
        if out:
            st[_FLAGS_S] |= flags
            if win > st[_WIN_OUT]:
                st[_WIN_OUT] = win
        else:
            st[_FLAGS_C] |= flags
            if win > st[_WIN_IN]:
                st[_WIN_IN] = win
        if payload > 0:
            end = (seq + payload) & 0xFFFFFFFF
            k = _SEQ_END_OUT if out else _SEQ_END_IN
            last = st[k]
            if last is None or 0 < ((end - last) & 0xFFFFFFFF) < 0x80000000:
                st[k] = end
            else:  # every byte of this segment was sent before
                if out:
                    st[_RTX_OUT_B] += size
                    st[_RTX_OUT_P] += 1
                else:
                    st[_RTX_IN_B] += size
                    st[_RTX_IN_P] += 1
            sport, dport = pkt.src_port, pkt.dst_port
            if sport == _FTP_PORT:
                start = ihl + doff
                code = ip[start : start + 4]
                if len(code) == 4 and code[:3].isdigit() and code[3:4] in (b" ", b"-"):
                    st[_FTP] = int(code[:3])
            elif sport == _DNS_PORT or dport == _DNS_PORT:
                start = ihl + doff + 2  # DNS over TCP has a 2-byte length prefix
                _dns(st, ip, start, min(len(ip), size))
    elif proto == _UDP:
        if pkt.src_port == _DNS_PORT or pkt.dst_port == _DNS_PORT:
            _dns(st, ip, ihl + 8, min(len(ip), size))
    elif proto == _ICMP4 or proto == _ICMP6:
        if st[_ICMP] is None and len(ip) >= ihl + 2:
            st[_ICMP] = (ip[ihl], ip[ihl + 1])


class NFv2Fields(NFPlugin):
    """Computes the NF v2 fields nfstream lacks and packs each expired flow's row.

    Parameters (keyword, stored as attributes by ``NFPlugin``):
    ``packet_counter``: an optional shared ``multiprocessing.Value`` counted up
    for every packet metered (used by live metering to report progress).
    """

    packet_counter = None

    def on_init(self, packet, flow):
        st = [255, 0, 1 << 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, None, None, None, None, None, 0, 0, 0]
        flow.udps.nf_state = st
        _update(st, packet)
        if self.packet_counter is not None:
            with self.packet_counter.get_lock():
                self.packet_counter.value += 1

    def on_update(self, packet, flow):
        _update(flow.udps.nf_state, packet)
        if self.packet_counter is not None:
            with self.packet_counter.get_lock():
                self.packet_counter.value += 1

    def on_expire(self, flow):
        st = flow.udps.nf_state
        proto = flow._C.detected_protocol.proto
        l7 = l7_proto_value(proto.master_protocol, proto.app_protocol)
        in_b, out_b = flow.src2dst_bytes, flow.dst2src_bytes
        dur_in, dur_out = flow.src2dst_duration_ms, flow.dst2src_duration_ms
        icmp = st[_ICMP]
        icmp_type = icmp[0] * 256 + icmp[1] if icmp is not None else 0
        icmp_v4 = icmp[0] if icmp is not None and flow.protocol == _ICMP4 else 0
        # min > max only when no packet had a readable IP header.
        min_ttl = st[_MIN_TTL] if st[_MIN_TTL] <= st[_MAX_TTL] else 0
        min_len = st[_MIN_LEN] if st[_MIN_LEN] != 1 << 30 else 0
        flow.udps.nf_row = (
            flow.src_ip,
            flow.src_port,
            flow.dst_ip,
            flow.dst_port,
            flow.protocol,
            l7,
            in_b,
            flow.src2dst_packets,
            out_b,
            flow.dst2src_packets,
            st[_FLAGS_C] | st[_FLAGS_S],
            st[_FLAGS_C],
            st[_FLAGS_S],
            flow.bidirectional_duration_ms,
            dur_in,
            dur_out,
            min_ttl,
            st[_MAX_TTL],
            st[_MAX_LEN],
            min_len,
            min_len,
            st[_MAX_LEN],
            in_b / max(dur_in / 1000.0, 1.0),
            out_b / max(dur_out / 1000.0, 1.0),
            st[_RTX_IN_B],
            st[_RTX_IN_P],
            st[_RTX_OUT_B],
            st[_RTX_OUT_P],
            (in_b * 8000) // max(dur_in, 1),
            (out_b * 8000) // max(dur_out, 1),
            st[8],
            st[9],
            st[10],
            st[11],
            st[12],
            st[_WIN_IN],
            st[_WIN_OUT],
            icmp_type,
            icmp_v4,
            st[_DNS_ID] or 0,
            st[_DNS_QTYPE] or 0,
            st[_DNS_TTL] or 0,
            st[_FTP],
            flow.bidirectional_first_seen_ms,
            flow.bidirectional_last_seen_ms,
            st[_L2_IN],
            st[_L2_OUT],
        )
        del flow.udps.nf_state
