"""The NF v2 fields computed by the plugin, on small hand-made captures."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")

from flowsentinel.metering import MeterConfig, flow_columns, meter_capture  # noqa: E402
from flowsentinel.schema import TIME_COLUMNS, V1_FEATURES, V2_FEATURES  # noqa: E402
from tests.metering.pcapgen import icmp, ipv4, tcp, udp, write_pcap  # noqa: E402

SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
C, S = "10.0.0.1", "10.0.0.2"


def _one(path, **cfg):
    df = meter_capture(path, MeterConfig(**cfg)).to_pandas()
    assert len(df) == 1, df
    return df.iloc[0]


def test_tcp_session_fields(tmp_path):
    t0 = 1_600_000_000.0
    pkts = [
        (t0, ipv4(C, S, 6, tcp(40000, 80, 100, SYN, win=500), ttl=64)),
        (t0 + 0.010, ipv4(S, C, 6, tcp(80, 40000, 900, SYN | ACK, win=7000), ttl=50)),
        (t0 + 0.020, ipv4(C, S, 6, tcp(40000, 80, 101, ACK | PSH, b"x" * 200, win=800), ttl=64)),
        # the same 200 bytes again: a retransmission
        (t0 + 0.520, ipv4(C, S, 6, tcp(40000, 80, 101, ACK | PSH, b"x" * 200, win=800), ttl=63)),
        (t0 + 0.600, ipv4(S, C, 6, tcp(80, 40000, 901, ACK | PSH, b"y" * 1300, win=9000), ttl=50)),
        (t0 + 2.020, ipv4(C, S, 6, tcp(40000, 80, 301, FIN | ACK, win=800), ttl=64)),
    ]
    r = _one(write_pcap(tmp_path / "tcp.pcap", pkts), link_layer_bytes=True)
    assert (r.IPV4_SRC_ADDR, r.L4_SRC_PORT, r.IPV4_DST_ADDR, r.L4_DST_PORT, r.PROTOCOL) == (C, 40000, S, 80, 6)
    assert (r.IN_PKTS, r.OUT_PKTS) == (4, 2)
    assert r.IN_BYTES == 40 + 240 + 240 + 40 and r.OUT_BYTES == 40 + 1340  # IP-layer bytes
    assert r.IN_L2_BYTES == r.IN_BYTES + 4 * 14
    assert r.CLIENT_TCP_FLAGS == SYN | ACK | PSH | FIN and r.SERVER_TCP_FLAGS == SYN | ACK | PSH
    assert r.TCP_FLAGS == r.CLIENT_TCP_FLAGS | r.SERVER_TCP_FLAGS
    assert r.FLOW_DURATION_MILLISECONDS == 2020 and r.DURATION_IN == 2020 and r.DURATION_OUT == 590
    assert (r.MIN_TTL, r.MAX_TTL) == (50, 64)
    assert (r.SHORTEST_FLOW_PKT, r.LONGEST_FLOW_PKT, r.MIN_IP_PKT_LEN, r.MAX_IP_PKT_LEN) == (40, 1340, 40, 1340)
    assert (r.RETRANSMITTED_IN_PKTS, r.RETRANSMITTED_IN_BYTES) == (1, 240)
    assert (r.RETRANSMITTED_OUT_PKTS, r.RETRANSMITTED_OUT_BYTES) == (0, 0)
    assert (r.TCP_WIN_MAX_IN, r.TCP_WIN_MAX_OUT) == (800, 9000)
    hist = [r[c] for c in V2_FEATURES if c.startswith("NUM_PKTS_")]
    assert hist == [3, 2, 0, 0, 1]
    assert r.SRC_TO_DST_SECOND_BYTES == pytest.approx(560 / 2.02)
    assert r.DST_TO_SRC_SECOND_BYTES == pytest.approx(1380.0)  # under one second: bytes over 1 s
    assert r.SRC_TO_DST_AVG_THROUGHPUT == 560 * 8000 // 2020
    assert r.FLOW_START_MILLISECONDS == 1_600_000_000_000 and r.FLOW_END_MILLISECONDS == 1_600_000_002_020


def _dns_message(qid: int, response: bool, ttl: int = 0) -> bytes:
    name = b"\x07example\x03com\x00"
    if not response:
        return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack("!HH", 28, 1)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, ttl, 16) + b"\0" * 16
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + name + struct.pack("!HH", 28, 1) + answer


def test_dns_fields(tmp_path):
    pkts = [
        (1.0, ipv4(C, S, 17, udp(5555, 53, _dns_message(0xBEEF, False)))),
        (1.1, ipv4(S, C, 17, udp(53, 5555, _dns_message(0xBEEF, True, ttl=3600)))),
    ]
    r = _one(write_pcap(tmp_path / "dns.pcap", pkts))
    assert (r.DNS_QUERY_ID, r.DNS_QUERY_TYPE, r.DNS_TTL_ANSWER) == (0xBEEF, 28, 3600)
    assert r.L7_PROTO == 5.0


def test_icmp_fields(tmp_path):
    pkts = [(1.0, ipv4(C, S, 1, icmp(3, 3))), (1.5, ipv4(C, S, 1, icmp(3, 3)))]
    r = _one(write_pcap(tmp_path / "icmp.pcap", pkts))
    assert (r.ICMP_TYPE, r.ICMP_IPV4_TYPE) == (3 * 256 + 3, 3)
    assert r.PROTOCOL == 1 and r.L4_SRC_PORT == 0


def test_ftp_return_code(tmp_path):
    pkts = [
        (1.0, ipv4(C, S, 6, tcp(40001, 21, 1, SYN))),
        (1.1, ipv4(S, C, 6, tcp(21, 40001, 50, SYN | ACK))),
        (1.2, ipv4(S, C, 6, tcp(21, 40001, 51, ACK | PSH, b"220 ready\r\n"))),
        (1.3, ipv4(C, S, 6, tcp(40001, 21, 2, ACK | PSH, b"USER x\r\n"))),
        (1.4, ipv4(S, C, 6, tcp(21, 40001, 62, ACK | PSH, b"331 password please\r\n"))),
    ]
    r = _one(write_pcap(tmp_path / "ftp.pcap", pkts))
    assert r.FTP_COMMAND_RET_CODE == 331


def test_columns_and_dtypes_v2_and_v1(pcaps):
    cap = pcaps / "ndpi" / "dns.pcap"
    v2 = meter_capture(cap).to_pandas()
    assert list(v2.columns) == V2_FEATURES + list(TIME_COLUMNS)
    assert v2["L7_PROTO"].dtype == "float64" and v2["IN_BYTES"].dtype == "int64"
    v1 = meter_capture(cap, MeterConfig(schema="v1", flow_id=True)).to_pandas()
    assert list(v1.columns) == ["FLOW_ID"] + V1_FEATURES + list(TIME_COLUMNS)
    assert list(v1["FLOW_ID"]) == [0, 1]
    assert list(v1.columns) == flow_columns(MeterConfig(schema="v1", flow_id=True))


def test_chunks_are_bounded(pcaps):
    run = meter_capture(pcaps / "ndpi" / "badpackets.pcap", MeterConfig(chunk_size=40))
    sizes = [len(c) for c in run]
    assert sizes == [40, 40, 13]
    assert run.stats.flows == 93 and run.stats.packets_metered == 93


def test_idle_timeout_splits_flows(tmp_path):
    pkts = [(t, ipv4(C, S, 17, udp(1000, 2000, b"a"))) for t in (1.0, 2.0, 10.0)]
    path = write_pcap(tmp_path / "gap.pcap", pkts)
    assert len(meter_capture(path, MeterConfig(idle_timeout=5)).to_pandas()) == 2
    assert len(meter_capture(path).to_pandas()) == 1
