"""Stitching one-way records into NF flows, through the collector, on hand-made softflowd-style exports."""

from __future__ import annotations

import numpy as np

from flowsentinel.collector import Collector, CollectorConfig
from tests.collector.packets import SOFTFLOWD_V4, ip, set_, softflowd_record, template_record, uint, v9

EXPORTER = "192.0.2.10"
TEMPLATE = set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False))


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def collector(**kw) -> tuple[Collector, Clock]:
    clock = Clock()
    return Collector(CollectorConfig(**kw), clock=clock), clock


def datagram(*records: bytes, seq: int = 0) -> bytes:
    return v9([TEMPLATE, set_(1024, b"".join(records))], seq=seq, uptime=100_000)


def one_frame(frames):
    assert len(frames) == 1, [f.columns.tolist() for f in frames]
    return frames[0].sort_values(["IPV4_SRC_ADDR", "L4_SRC_PORT"]).reset_index(drop=True)


def test_two_directions_become_one_flow_with_the_client_first():
    c, _ = collector()
    server = softflowd_record("10.0.0.2", "10.0.0.1", 50_010, 50_900, 5000, 6, 443, 40000, flags=0x1A)
    client = softflowd_record("10.0.0.1", "10.0.0.2", 50_000, 50_950, 700, 7, 40000, 443, flags=0x1B)
    frame = one_frame(c.collect([(datagram(server, client), EXPORTER)]))
    row = frame.iloc[0]
    assert (row.IPV4_SRC_ADDR, row.L4_SRC_PORT, row.IPV4_DST_ADDR, row.L4_DST_PORT) == ("10.0.0.1", 40000,
                                                                                         "10.0.0.2", 443)
    assert (row.IN_BYTES, row.IN_PKTS, row.OUT_BYTES, row.OUT_PKTS) == (700, 7, 5000, 6)
    assert (row.CLIENT_TCP_FLAGS, row.SERVER_TCP_FLAGS, row.TCP_FLAGS) == (0x1B, 0x1A, 0x1B)
    assert (row.DURATION_IN, row.DURATION_OUT, row.FLOW_DURATION_MILLISECONDS) == (950, 890, 950)
    assert c.counters.flows_stitched == 1 and c.counters.flows == 1


def test_equal_start_times_the_syn_sender_is_the_client():
    c, _ = collector()
    synack = softflowd_record("10.0.0.1", "10.0.0.9", 1000, 1000, 44, 1, 22, 61000, flags=0x12)
    syn = softflowd_record("10.0.0.9", "10.0.0.1", 1000, 1000, 44, 1, 61000, 22, flags=0x02)
    row = one_frame(c.collect([(datagram(synack, syn), EXPORTER)])).iloc[0]
    assert (row.IPV4_SRC_ADDR, row.L4_DST_PORT, row.CLIENT_TCP_FLAGS, row.SERVER_TCP_FLAGS) == ("10.0.0.9", 22,
                                                                                               0x02, 0x12)


def test_unanswered_records_wait_then_leave_alone():
    c, clock = collector(stitch_wait_s=0.5)
    probe = softflowd_record("10.0.0.9", "10.0.0.1", 1000, 1000, 44, 1, 61000, 23, flags=0x02)
    c.feed(datagram(probe), EXPORTER, clock.now)
    frames, _ = c.frames(clock.now)
    assert frames == [] and c.stitcher.held() == 1
    clock.now = 0.6
    frames, arrivals = c.frames(clock.now)
    row = one_frame(frames).iloc[0]
    assert (row.IN_PKTS, row.OUT_PKTS, row.OUT_BYTES, row.SERVER_TCP_FLAGS) == (1, 0, 0, 0)
    assert c.counters.flows_one_way == 1 and arrivals[0].tolist() == [0.0]


def test_a_late_partner_within_the_wait_is_stitched():
    c, clock = collector(stitch_wait_s=0.5)
    c.feed(datagram(softflowd_record("10.0.0.1", "10.0.0.2", 1000, 1200, 100, 2, 5000, 53, proto=17)), EXPORTER, 0.0)
    assert c.frames(0.0)[0] == []
    clock.now = 0.3
    c.feed(datagram(softflowd_record("10.0.0.2", "10.0.0.1", 1100, 1300, 300, 2, 53, 5000, proto=17), seq=1),
           EXPORTER, 0.3)
    row = one_frame(c.frames(0.3)[0]).iloc[0]
    assert (row.L4_DST_PORT, row.IN_BYTES, row.OUT_BYTES) == (53, 100, 300)


def test_records_far_apart_in_time_are_not_stitched():
    c, _ = collector(stitch_gap_ms=1000)
    a = softflowd_record("10.0.0.1", "10.0.0.2", 1000, 1200, 100, 2, 5000, 53, proto=17)
    b = softflowd_record("10.0.0.2", "10.0.0.1", 60_000, 60_100, 300, 2, 53, 5000, proto=17)
    frame = one_frame(c.collect([(datagram(a, b), EXPORTER)]))
    assert len(frame) == 2 and (frame.OUT_PKTS == 0).all() and c.counters.flows_one_way == 2


def test_other_exporters_and_protocols_do_not_pair():
    c, _ = collector()
    a = softflowd_record("10.0.0.1", "10.0.0.2", 1000, 1200, 100, 2, 5000, 53, proto=17)
    b_tcp = softflowd_record("10.0.0.2", "10.0.0.1", 1000, 1200, 300, 2, 53, 5000, proto=6)
    b_udp = softflowd_record("10.0.0.2", "10.0.0.1", 1000, 1200, 300, 2, 53, 5000, proto=17)
    frames = c.collect([(datagram(a, b_tcp), EXPORTER), (datagram(b_udp), "192.0.2.99")])
    assert sum(len(f) for f in frames) == 3 and c.counters.flows_stitched == 0


def test_a_long_conversation_pairs_piece_by_piece():
    c, _ = collector()
    pieces = []
    for k in range(3):
        t = 10_000 * k
        pieces.append(softflowd_record("10.0.0.1", "10.0.0.2", t, t + 9000, 100 + k, 2, 40000, 80))
        pieces.append(softflowd_record("10.0.0.2", "10.0.0.1", t + 5, t + 9005, 1000 + k, 3, 80, 40000))
    frame = one_frame(c.collect([(datagram(*pieces), EXPORTER)]))
    assert sorted(zip(frame.IN_BYTES, frame.OUT_BYTES)) == [(100, 1000), (101, 1001), (102, 1002)]


def test_icmp_request_and_reply_become_one_flow():
    c, _ = collector()
    icmp_template = set_(0, template_record(1025, [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (32, 2),
                                                   (4, 1)], ipfix=False))

    def rec(src, dst, t, icmp):
        return ip(src) + ip(dst) + uint(t, 4) + uint(t, 4) + uint(84, 4) + uint(1, 4) + uint(icmp, 2) + uint(1, 1)

    dg = v9([icmp_template, set_(1025, rec("10.0.0.1", "10.0.0.2", 500, 8 << 8) + rec("10.0.0.2", "10.0.0.1", 501, 0))],
            uptime=10_000)
    row = one_frame(c.collect([(dg, EXPORTER)])).iloc[0]
    assert (row.IPV4_SRC_ADDR, row.ICMP_TYPE, row.ICMP_IPV4_TYPE, row.IN_PKTS, row.OUT_PKTS) == ("10.0.0.1", 2048, 8,
                                                                                               1, 1)
    assert (row.L4_SRC_PORT, row.L4_DST_PORT, row.TCP_FLAGS) == (0, 0, 0)


def test_latency_is_measured_from_the_first_record():
    c, clock = collector(stitch_wait_s=0.5)
    seen = []
    c.sink = lambda frames: (seen.extend(frames), (sum(len(f) for f in frames), 0))[1]
    c.feed(datagram(softflowd_record("10.0.0.9", "10.0.0.1", 1000, 1000, 44, 1, 61000, 23, flags=2)), EXPORTER, 0.0)
    clock.now = 0.7
    c.flush(0.7)
    assert c.counters.flows_scored == 1 and np.isclose(c.counters.latency()["max"], 0.7)
