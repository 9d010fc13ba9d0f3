"""Thousands of mutated datagrams thrown at the collector: nothing raises, every datagram is accounted for.

The seeds are valid exports of every kind the decoder reads (NetFlow v5, a
softflowd-style v9 export, IPFIX with enterprise, reverse, variable-length
and options templates, nProbe's NF template in v9 and IPFIX). Hypothesis
flips bytes, truncates, extends and splices them, and adds datagrams of
random bytes; each example goes through the whole path (decode, columns,
NF flows, stitching, frames) as one batch.
"""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("hypothesis", reason="the property test needs hypothesis (the test extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from flowsentinel.collector import Collector, CollectorConfig  # noqa: E402
from flowsentinel.collector.elements import NTOP_PEN, REVERSE_PEN  # noqa: E402
from tests.collector import packets as p  # noqa: E402
from tests.collector.test_nprobe import v9_datagram as nprobe_v9  # noqa: E402

EXAMPLES = 400
PER_EXAMPLE = 12  # datagrams per example: 4,800 mutated or random datagrams in all


def _seeds() -> list[bytes]:
    recs = [p.softflowd_record("10.0.0.1", "10.0.0.2", 1000, 2000, 500, 4, 40000, 80, flags=0x1B),
            p.softflowd_record("10.0.0.2", "10.0.0.1", 1001, 2001, 900, 3, 80, 40000, flags=0x12)]
    v9_export = p.v9([p.set_(0, p.template_record(1024, p.SOFTFLOWD_V4, ipfix=False)), p.set_(1024, b"".join(recs))])
    v5_export = p.v5([{"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 1, "dport": 2, "proto": 6, "pkts": 3,
                     "bytes": 180, "flags": 2, "first": 5, "last": 9}] * 3)
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (6, 1), (22, 4), (21, 4),
              (1, 4, REVERSE_PEN), (2, 4, REVERSE_PEN), (118, 2, NTOP_PEN), (96, 0xFFFF)]
    rec = (p.ip("10.0.0.1") + p.ip("10.0.0.2") + p.uint(1, 2) + p.uint(2, 2) + p.uint(6, 1) + p.uint(10, 4)
           + p.uint(1, 4) + p.uint(2, 1) + p.uint(100, 4) + p.uint(200, 4) + p.uint(20, 4) + p.uint(2, 4) + p.uint(7, 2) + b"\x03abc")
    opts = p.options_template_record(256, [(143, 4)], [(160, 8), (305, 4), (306, 4)], ipfix=True)
    ipfix_export = p.ipfix([p.set_(2, p.template_record(300, fields, ipfix=True)), p.set_(3, opts),
                          p.set_(256, p.uint(1, 4) + p.uint(1_600_000_000_000, 8) + p.uint(1, 4) + p.uint(1, 4)),
                          p.set_(300, rec * 3)])
    return [v9_export, v5_export, ipfix_export, nprobe_v9()]


SEEDS = _seeds()

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2000), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 2000), st.just(0)),
    st.tuples(st.just("grow"), st.integers(0, 2000), st.integers(1, 64)),
    st.tuples(st.just("word"), st.integers(0, 2000), st.integers(0, 0xFFFF)),
)


def mutate(data: bytes, steps) -> bytes:
    buf = bytearray(data)
    for kind, pos, value in steps:
        if not buf:
            break
        pos %= len(buf)
        if kind == "flip":
            buf[pos] = value
        elif kind == "cut":
            del buf[pos:]
        elif kind == "grow":
            buf[pos:pos] = bytes(value)
        elif kind == "word" and pos + 2 <= len(buf):
            buf[pos:pos + 2] = struct.pack("!H", value)
    return bytes(buf)


datagram = st.one_of(
    st.tuples(st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=6)).map(
        lambda t: mutate(SEEDS[t[0]], t[1])),
    st.binary(min_size=0, max_size=300),
    st.binary(min_size=2, max_size=200).map(lambda b: bytes([0, 10]) + struct.pack("!H", len(b) + 4) + b),
    st.sampled_from(SEEDS),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(datagram, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE), st.sampled_from(["192.0.2.1", "2001:db8::1"]))
def test_mutated_datagrams_never_break_the_collector(datagrams, exporter):
    c = Collector(CollectorConfig(max_held_sets=16))
    frames = c.collect([(d, exporter) for d in datagrams])
    counters = c.counters
    # Every datagram is counted once: by its version, as an unknown version, or as too short to have one.
    by_version = counters.by_version[5] + counters.by_version[9] + counters.by_version[10]
    too_short = sum(len(d) < 2 for d in datagrams)
    assert counters.packets == len(datagrams) == by_version + counters.unknown_version + too_short
    assert sum(len(f) for f in frames) == counters.flows
    for frame in frames:
        assert not frame.isna().any().any()
