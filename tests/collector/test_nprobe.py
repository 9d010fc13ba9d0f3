"""nProbe's NF template, built to nProbe's documented element list, decoded field by field.

nProbe is not packaged, so its export is built here: the template that
yields the NF v2 columns (``nprobe -T "%IPV4_SRC_ADDR %L4_SRC_PORT ..."``),
each element with the id and length nProbe's ``-T`` list gives (NetFlow v9
ids 57472 + n, IPFIX enterprise 35632 element n), and one record with a
distinct value in every field. The IPFIX datagram is built with scapy's
NetFlow layers; scapy's v9 field specifier reserves the top bit as an
enterprise bit (IPFIX's layout), so it cannot carry nProbe's v9 ids above
32767 and the v9 template set is packed by hand.
"""

from __future__ import annotations

import struct

import pytest

from flowsentinel.collector import Collector
from flowsentinel.collector.elements import NTOP_PEN
from flowsentinel.collector.flows import template_flow_columns
from flowsentinel.collector.templates import Domain, Field, Template
from flowsentinel.schema import TIME_COLUMNS, V2_FEATURES
from tests.collector.packets import ip, set_, template_record, uint, v9

NTOP_V9_BASE = 57472

# (NF column, IANA id or None, nProbe id or None, length) in nProbe's documented lengths.
NF_TEMPLATE = [
    ("IPV4_SRC_ADDR", 8, None, 4), ("L4_SRC_PORT", 7, None, 2), ("IPV4_DST_ADDR", 12, None, 4),
    ("L4_DST_PORT", 11, None, 2), ("PROTOCOL", 4, None, 1), ("L7_PROTO", None, 118, 2),
    ("IN_BYTES", 1, None, 4), ("IN_PKTS", 2, None, 4), ("OUT_BYTES", 23, None, 4), ("OUT_PKTS", 24, None, 4),
    ("TCP_FLAGS", 6, None, 1), ("CLIENT_TCP_FLAGS", None, 78, 1), ("SERVER_TCP_FLAGS", None, 79, 1),
    ("FLOW_DURATION_MILLISECONDS", 161, None, 4), ("DURATION_IN", None, 391, 4), ("DURATION_OUT", None, 392, 4),
    ("MIN_TTL", 52, None, 1), ("MAX_TTL", 53, None, 1), ("LONGEST_FLOW_PKT", None, 107, 2),
    ("SHORTEST_FLOW_PKT", None, 108, 2), ("MIN_IP_PKT_LEN", 25, None, 2), ("MAX_IP_PKT_LEN", 26, None, 2),
    ("SRC_TO_DST_SECOND_BYTES", None, 472, 8), ("DST_TO_SRC_SECOND_BYTES", None, 473, 8),
    ("RETRANSMITTED_IN_BYTES", None, 127, 4), ("RETRANSMITTED_IN_PKTS", None, 109, 4),
    ("RETRANSMITTED_OUT_BYTES", None, 128, 4), ("RETRANSMITTED_OUT_PKTS", None, 110, 4),
    ("SRC_TO_DST_AVG_THROUGHPUT", None, 84, 4), ("DST_TO_SRC_AVG_THROUGHPUT", None, 87, 4),
    ("NUM_PKTS_UP_TO_128_BYTES", None, 88, 4), ("NUM_PKTS_128_TO_256_BYTES", None, 89, 4),
    ("NUM_PKTS_256_TO_512_BYTES", None, 90, 4), ("NUM_PKTS_512_TO_1024_BYTES", None, 91, 4),
    ("NUM_PKTS_1024_TO_1514_BYTES", None, 92, 4), ("TCP_WIN_MAX_IN", None, 416, 2),
    ("TCP_WIN_MAX_OUT", None, 420, 2), ("ICMP_TYPE", 32, None, 2), ("ICMP_IPV4_TYPE", 176, None, 1),
    ("DNS_QUERY_ID", None, 206, 2), ("DNS_QUERY_TYPE", None, 207, 1), ("DNS_TTL_ANSWER", None, 352, 4),
    ("FTP_COMMAND_RET_CODE", None, 359, 2),
    ("FLOW_START_MILLISECONDS", 152, None, 8), ("FLOW_END_MILLISECONDS", 153, None, 8),
]

# One flow, every value distinct (a DNS flow would not have an FTP code; the decoder must not care).
VALUES = {
    "IPV4_SRC_ADDR": "192.168.100.3", "L4_SRC_PORT": 51234, "IPV4_DST_ADDR": "192.168.100.7", "L4_DST_PORT": 80,
    "PROTOCOL": 6, "L7_PROTO": 7, "IN_BYTES": 1_234_567, "IN_PKTS": 987, "OUT_BYTES": 7_654_321, "OUT_PKTS": 1_001,
    "TCP_FLAGS": 0x1F, "CLIENT_TCP_FLAGS": 0x1B, "SERVER_TCP_FLAGS": 0x17, "FLOW_DURATION_MILLISECONDS": 4_321,
    "DURATION_IN": 4_300, "DURATION_OUT": 4_250, "MIN_TTL": 57, "MAX_TTL": 64, "LONGEST_FLOW_PKT": 1500,
    "SHORTEST_FLOW_PKT": 40, "MIN_IP_PKT_LEN": 41, "MAX_IP_PKT_LEN": 1499, "SRC_TO_DST_SECOND_BYTES": 285_714,
    "DST_TO_SRC_SECOND_BYTES": 1_771_428, "RETRANSMITTED_IN_BYTES": 3_000, "RETRANSMITTED_IN_PKTS": 2,
    "RETRANSMITTED_OUT_BYTES": 4_500, "RETRANSMITTED_OUT_PKTS": 3, "SRC_TO_DST_AVG_THROUGHPUT": 2_285_714,
    "DST_TO_SRC_AVG_THROUGHPUT": 14_171_428, "NUM_PKTS_UP_TO_128_BYTES": 500, "NUM_PKTS_128_TO_256_BYTES": 101,
    "NUM_PKTS_256_TO_512_BYTES": 102, "NUM_PKTS_512_TO_1024_BYTES": 103, "NUM_PKTS_1024_TO_1514_BYTES": 1_182,
    "TCP_WIN_MAX_IN": 64_240, "TCP_WIN_MAX_OUT": 65_160, "ICMP_TYPE": 0, "ICMP_IPV4_TYPE": 0,
    "DNS_QUERY_ID": 4_660, "DNS_QUERY_TYPE": 28, "DNS_TTL_ANSWER": 3_600, "FTP_COMMAND_RET_CODE": 331,
    "FLOW_START_MILLISECONDS": 1_700_000_000_123, "FLOW_END_MILLISECONDS": 1_700_000_004_444,
}


def record() -> bytes:
    out = b""
    for column, _, _, length in NF_TEMPLATE:
        value = VALUES[column]
        out += ip(value) if column.startswith("IPV4_") else uint(value, length)
    return out


def v9_fields() -> list[tuple[int, int]]:
    return [(iana if iana is not None else NTOP_V9_BASE + ntop, length) for _, iana, ntop, length in NF_TEMPLATE]


def v9_datagram() -> bytes:
    return v9([set_(0, template_record(260, v9_fields(), ipfix=False)), set_(260, record())], uptime=5_000,
              secs=1_700_000_010)


def ipfix_datagram() -> bytes:
    scapy = pytest.importorskip("scapy.layers.netflow", reason="the IPFIX export is built with scapy")
    from scapy.all import Raw, raw

    fields = [
        scapy.NetflowTemplateFieldV9(fieldType=iana, fieldLength=length) if iana is not None else
        scapy.NetflowTemplateFieldV9(enterpriseBit=1, fieldType=ntop, fieldLength=length, enterpriseNumber=NTOP_PEN)
        for _, iana, ntop, length in NF_TEMPLATE
    ]
    templates = scapy.NetflowFlowsetV9(flowSetID=2, templates=[
        scapy.NetflowTemplateV9(templateID=260, fieldCount=len(fields), template_fields=fields)])
    data = scapy.NetflowDataflowsetV9(templateID=260, records=[Raw(load=record())])
    packet = bytearray(raw(scapy.NetflowHeader(version=10) / scapy.NetflowHeaderV10(ExportTime=1_700_000_010)
                           / templates / data))
    # scapy leaves the data set's padding out of the message length; RFC 7011 counts it.
    packet[2:4] = struct.pack("!H", len(packet))
    return bytes(packet)


@pytest.mark.parametrize("make", [v9_datagram, ipfix_datagram], ids=["netflow-v9", "ipfix"])
def test_nprobe_nf_template_decodes_to_the_full_v2_row(make):
    collector = Collector()
    (frame,) = collector.collect([(make(), "192.0.2.5")])
    assert list(frame.columns) == list(TIME_COLUMNS) + V2_FEATURES
    row = frame.iloc[0].to_dict()
    mismatched = {c: (row[c], v) for c, v in VALUES.items() if row[c] != v}
    assert not mismatched
    assert frame["L7_PROTO"].dtype.name == "float64" and frame["IN_BYTES"].dtype.name == "int64"
    # A biflow record is a flow as it is: nothing waits for a reverse record.
    assert collector.counters.flows_biflow == 1 and collector.stitcher.held() == 0


def test_the_nf_template_supplies_every_v2_column():
    template = Template(260, tuple(Field(i, n) for i, n in v9_fields()), version=9)
    columns = template_flow_columns(Domain("192.0.2.5", 9, 0, 0), template)
    assert columns == list(TIME_COLUMNS) + V2_FEATURES
