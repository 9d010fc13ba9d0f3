"""The decoder on hand-made datagrams: every version, template life cycle, options, held records, bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from flowsentinel.collector.config import CollectorConfig
from flowsentinel.collector.decoder import Decoder
from flowsentinel.collector.elements import NTOP_PEN, REVERSE_PEN
from flowsentinel.collector.flows import normalize, to_frame
from flowsentinel.collector.records import records_from_chunks
from tests.collector.packets import (
    EXPORT_SECS,
    SOFTFLOWD_V4,
    ip,
    ipfix,
    options_template_record,
    set_,
    softflowd_record,
    template_record,
    uint,
    v5,
    v9,
)

EXPORTER = "192.0.2.10"


def frames(decoder: Decoder) -> list:
    out = []
    for batch in records_from_chunks(decoder.take()):
        cols, _ = normalize(batch)
        out.append(to_frame(cols))
    return out


def raw(decoder: Decoder):
    return records_from_chunks(decoder.take())


def softflowd_v9(records: list[bytes], *, seq: int = 0, with_template: bool = True, uptime: int = 10_000) -> bytes:
    sets = [set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False))] if with_template else []
    return v9(sets + [set_(1024, b"".join(records))], seq=seq, uptime=uptime)


# ---- NetFlow v5 --------------------------------------------------------------
def test_v5_records_and_times():
    d = Decoder()
    rec = {"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 40000, "dport": 80, "proto": 6, "pkts": 3, "bytes": 180,
           "flags": 0x1A, "first": 9_000, "last": 9_500}
    d.feed(v5([rec, {**rec, "sport": 40001}], uptime=10_000), EXPORTER, 0.0)
    (batch,) = raw(d)
    cols = batch.columns
    assert cols["IN_PKTS"].tolist() == [3, 3] and cols["IN_BYTES"].tolist() == [180, 180]
    assert cols["L4_SRC_PORT"].tolist() == [40000, 40001] and cols["TCP_FLAGS"].tolist() == [0x1A, 0x1A]
    # First and last are uptimes: 1 s and 0.5 s before the header's 10 s of uptime.
    assert cols["FLOW_START_MILLISECONDS"][0] == EXPORT_SECS * 1000 - 1000
    assert cols["FLOW_END_MILLISECONDS"][0] == EXPORT_SECS * 1000 - 500
    assert d.counters.records == 2 and d.counters.by_version[5] == 1


def test_v5_uptime_wrap_is_read_modulo_2_32():
    d = Decoder()
    # The exporter's uptime wrapped after the flow started: first is just below 2**32.
    rec = {"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 1, "dport": 2, "proto": 17, "pkts": 1, "bytes": 60,
           "first": 2**32 - 200, "last": 100}
    d.feed(v5([rec], uptime=300), EXPORTER, 0.0)
    cols = raw(d)[0].columns
    assert cols["FLOW_END_MILLISECONDS"][0] - cols["FLOW_START_MILLISECONDS"][0] == 300


def test_v5_icmp_type_comes_from_the_destination_port():
    d = Decoder()
    rec = {"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 0, "dport": 8 * 256 + 0, "proto": 1, "pkts": 1,
           "bytes": 84, "first": 1, "last": 1}
    d.feed(v5([rec]), EXPORTER, 0.0)
    (frame,) = frames(d)
    assert frame.loc[0, "ICMP_TYPE"] == 2048 and frame.loc[0, "ICMP_IPV4_TYPE"] == 8
    assert frame.loc[0, "L4_DST_PORT"] == 0 and frame.loc[0, "L4_SRC_PORT"] == 0


def test_v5_header_sampling_scales_counters():
    d = Decoder()
    rec = {"src": "10.0.0.1", "dst": "10.0.0.2", "sport": 1, "dport": 2, "proto": 17, "pkts": 2, "bytes": 100,
           "first": 1, "last": 2}
    d.feed(v5([rec], sampling=(1 << 14) | 10), EXPORTER, 0.0)
    cols = raw(d)[0].columns
    assert cols["IN_PKTS"][0] == 20 and cols["IN_BYTES"][0] == 1000


# ---- NetFlow v9 --------------------------------------------------------------
def test_v9_softflowd_template_gives_the_plain_exporter_columns():
    d = Decoder()
    d.feed(softflowd_v9([softflowd_record("10.0.0.1", "10.0.0.2", 9000, 9400, 500, 5, 40000, 443, flags=0x1B)]),
           EXPORTER, 0.0)
    (frame,) = frames(d)
    assert list(frame.columns) == [
        "FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS", "IPV4_SRC_ADDR", "L4_SRC_PORT", "IPV4_DST_ADDR",
        "L4_DST_PORT", "PROTOCOL", "IN_BYTES", "IN_PKTS", "OUT_BYTES", "OUT_PKTS", "TCP_FLAGS", "CLIENT_TCP_FLAGS",
        "SERVER_TCP_FLAGS", "FLOW_DURATION_MILLISECONDS", "DURATION_IN", "DURATION_OUT", "ICMP_TYPE",
        "ICMP_IPV4_TYPE",
    ]
    row = frame.iloc[0]
    assert (row.IPV4_SRC_ADDR, row.L4_DST_PORT, row.IN_BYTES, row.IN_PKTS) == ("10.0.0.1", 443, 500, 5)
    assert (row.OUT_BYTES, row.OUT_PKTS, row.SERVER_TCP_FLAGS, row.CLIENT_TCP_FLAGS) == (0, 0, 0, 0x1B)
    assert row.FLOW_DURATION_MILLISECONDS == 400 and row.DURATION_IN == 400
    # Columns no element fills are absent, not zero.
    assert "L7_PROTO" not in frame.columns and "MIN_TTL" not in frame.columns


def test_v9_data_before_its_template_is_held_then_decoded():
    d = Decoder()
    rec = softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1, 1, 2)
    d.feed(softflowd_v9([rec, rec], with_template=False), EXPORTER, 0.0)
    assert d.counters.sets_held == 1 and d.counters.records == 0 and d.held_sets() == 1
    d.feed(v9([set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False))], seq=1), EXPORTER, 0.1)
    assert d.counters.records_released == 2 and d.counters.records == 2 and d.held_sets() == 0
    assert len(raw(d)[0]) == 2


def test_held_sets_expire_and_overflow():
    d = Decoder(CollectorConfig(hold_s=5.0, max_held_sets=2))
    rec = softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1, 1, 2)
    for i in range(3):
        d.feed(softflowd_v9([rec], with_template=False, seq=i), EXPORTER, float(i))
    assert d.counters.held_dropped["overflow"] == 1 and d.held_sets() == 2
    d.expire(now=100.0)
    assert d.counters.held_dropped["expired"] == 2 and d.held_sets() == 0


def test_template_refresh_change_and_expiry():
    d = Decoder(CollectorConfig(template_timeout_s=60.0))
    tpl = set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False))
    d.feed(v9([tpl]), EXPORTER, 0.0)
    d.feed(v9([tpl], seq=1), EXPORTER, 1.0)
    assert d.counters.templates == 1 and d.counters.templates_refreshed == 1
    d.feed(v9([set_(0, template_record(1024, SOFTFLOWD_V4[:6], ipfix=False))], seq=2), EXPORTER, 2.0)
    assert d.counters.templates_changed == 1
    d.expire(now=100.0)
    assert d.counters.templates_expired == 1
    d.feed(softflowd_v9([softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1, 1, 2)], with_template=False, seq=3),
           EXPORTER, 101.0)
    assert d.counters.sets_held == 1


def test_templates_are_kept_per_exporter_and_source_id():
    d = Decoder()
    d.feed(v9([set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False))], source_id=1), EXPORTER, 0.0)
    rec = softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1, 1, 2)
    d.feed(v9([set_(1024, rec)], source_id=2), EXPORTER, 0.0)   # another source id: no template
    d.feed(v9([set_(1024, rec)], source_id=1), "192.0.2.99", 0.0)  # another exporter: no template
    assert d.counters.sets_held == 2 and d.counters.records == 0
    d.feed(v9([set_(1024, rec)], source_id=1, seq=1), EXPORTER, 0.0)
    assert d.counters.records == 1


def test_v9_options_sampling_interval_scales_records():
    d = Decoder()
    opts = set_(1, options_template_record(256, [(1, 4)], [(34, 4), (35, 1)], ipfix=False))
    opt_data = set_(256, uint(0, 4) + uint(100, 4) + uint(1, 1))
    rec = softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 60, 1, 1, 2)
    d.feed(v9([opts, opt_data, set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False)), set_(1024, rec)]),
           EXPORTER, 0.0)
    assert d.counters.options_templates == 1 and d.counters.options_records == 1
    cols = raw(d)[0].columns
    assert cols["IN_PKTS"][0] == 100 and cols["IN_BYTES"][0] == 6000


def test_v9_sequence_gaps_are_counted():
    d = Decoder()
    for seq in (0, 1, 2, 5, 6):
        d.feed(v9([set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False))], seq=seq), EXPORTER, 0.0)
    assert d.counters.sequence_gaps == 1


# ---- IPFIX ---------------------------------------------------------------------
def test_ipfix_reduced_size_enterprise_and_variable_length_fields():
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 3), (2, 2), (152, 8), (153, 8),
              (118, 2, NTOP_PEN), (96, 0xFFFF), (78, 1, NTOP_PEN)]
    tpl = set_(2, template_record(300, fields, ipfix=True))

    def rec(name: bytes, nbytes: int) -> bytes:
        return (ip("10.1.1.1") + ip("10.1.1.2") + uint(5000, 2) + uint(53, 2) + uint(17, 1) + uint(nbytes, 3)
                + uint(2, 2) + uint(1_700_000_000_000, 8) + uint(1_700_000_000_250, 8) + uint(5, 2)
                + bytes([len(name)]) + name + uint(0x12, 1))

    long_name = b"x" * 300
    long_rec = (ip("10.1.1.3") + ip("10.1.1.2") + uint(5001, 2) + uint(53, 2) + uint(17, 1) + uint(70_000, 3)
                + uint(9, 2) + uint(1_700_000_000_000, 8) + uint(1_700_000_000_100, 8) + uint(7, 2)
                + b"\xff" + uint(len(long_name), 2) + long_name + uint(0x02, 1))
    d = Decoder()
    d.feed(ipfix([tpl, set_(300, rec(b"DNS", 120) + long_rec)]), EXPORTER, 0.0)
    cols = raw(d)[0].columns
    assert cols["IN_BYTES"].tolist() == [120, 70_000] and cols["IN_PKTS"].tolist() == [2, 9]
    assert cols["L7_PROTO"].tolist() == [5, 7] and cols["CLIENT_TCP_FLAGS"].tolist() == [0x12, 0x02]
    assert cols["FLOW_END_MILLISECONDS"].tolist() == [1_700_000_000_250, 1_700_000_000_100]


def test_ipfix_ntp_times_and_uptimes_with_system_init_time():
    ntp_start = (EXPORT_SECS + 2_208_988_800) << 32  # microseconds format, fraction 0
    ntp_end = ntp_start + (1 << 31)                  # + 0.5 s
    d = Decoder()
    d.feed(ipfix([set_(2, template_record(301, [(8, 4), (12, 4), (154, 8), (155, 8), (1, 4)], ipfix=True)),
                  set_(301, ip("10.0.0.1") + ip("10.0.0.2") + uint(ntp_start, 8) + uint(ntp_end, 8) + uint(9, 4))]),
           EXPORTER, 0.0)
    cols = raw(d)[0].columns
    assert cols["FLOW_START_MILLISECONDS"][0] == EXPORT_SECS * 1000
    assert cols["FLOW_END_MILLISECONDS"][0] == EXPORT_SECS * 1000 + 500
    init = 1_600_000_000_000
    opts = set_(3, options_template_record(256, [(143, 4)], [(160, 8)], ipfix=True))
    d.feed(ipfix([opts, set_(256, uint(1, 4) + uint(init, 8)),
                  set_(2, template_record(302, [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4)], ipfix=True)),
                  set_(302, ip("10.0.0.1") + ip("10.0.0.2") + uint(1000, 4) + uint(3000, 4) + uint(9, 4))]),
           EXPORTER, 0.0)
    cols = raw(d)[0].columns
    assert cols["FLOW_START_MILLISECONDS"][0] == init + 1000 and cols["FLOW_END_MILLISECONDS"][0] == init + 3000


def test_ipfix_sampling_from_packet_interval_and_space():
    d = Decoder()
    opts = set_(3, options_template_record(257, [(143, 4)], [(305, 4), (306, 4)], ipfix=True))
    tpl = set_(2, template_record(303, [(8, 4), (12, 4), (1, 4), (2, 4)], ipfix=True))
    d.feed(ipfix([opts, set_(257, uint(1, 4) + uint(1, 4) + uint(3, 4)), tpl,
                  set_(303, ip("10.0.0.1") + ip("10.0.0.2") + uint(100, 4) + uint(2, 4))]), EXPORTER, 0.0)
    cols = raw(d)[0].columns
    assert cols["IN_PKTS"][0] == 8 and cols["IN_BYTES"][0] == 400


def test_ipfix_withdrawal_mid_stream():
    d = Decoder(CollectorConfig(hold_s=1.0))
    tpl = set_(2, template_record(310, [(8, 4), (12, 4), (1, 4), (2, 4)], ipfix=True))
    data = set_(310, ip("10.0.0.1") + ip("10.0.0.2") + uint(100, 4) + uint(2, 4))
    d.feed(ipfix([tpl, data]), EXPORTER, 0.0)
    d.feed(ipfix([set_(2, struct.pack("!HH", 310, 0))], seq=1), EXPORTER, 0.1)  # withdraw template 310
    d.feed(ipfix([data], seq=1), EXPORTER, 0.2)
    assert d.counters.templates_withdrawn == 1 and d.counters.records == 1 and d.counters.sets_held == 1
    d.expire(now=5.0)
    assert d.counters.held_dropped["expired"] == 1


def test_ipfix_biflow_reverse_elements_and_orientation():
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4), (6, 1), (152, 8), (153, 8),
              (1, 4, REVERSE_PEN), (2, 4, REVERSE_PEN), (6, 1, REVERSE_PEN)]
    tpl = set_(2, template_record(320, fields, ipfix=True))
    # softflowd -b orders the ends by address: here the silent server comes first.
    rec = (ip("10.0.0.1") + ip("10.0.0.9") + uint(80, 2) + uint(51000, 2) + uint(6, 1) + uint(0, 4) + uint(0, 4)
           + uint(0, 1) + uint(1_700_000_000_000, 8) + uint(1_700_000_000_000, 8) + uint(46, 4) + uint(1, 4)
           + uint(0x02, 1))
    two_way = (ip("10.0.0.5") + ip("10.0.0.6") + uint(50000, 2) + uint(443, 2) + uint(6, 1) + uint(900, 4)
               + uint(6, 4) + uint(0x1B, 1) + uint(1_700_000_000_000, 8) + uint(1_700_000_000_500, 8)
               + uint(4000, 4) + uint(5, 4) + uint(0x1A, 1))
    d = Decoder()
    d.feed(ipfix([tpl, set_(320, rec + two_way)]), EXPORTER, 0.0)
    (frame,) = frames(d)
    scan, session = frame.iloc[0], frame.iloc[1]
    assert (scan.IPV4_SRC_ADDR, scan.L4_SRC_PORT, scan.IN_PKTS, scan.OUT_PKTS) == ("10.0.0.9", 51000, 1, 0)
    assert (scan.CLIENT_TCP_FLAGS, scan.SERVER_TCP_FLAGS, scan.TCP_FLAGS) == (0x02, 0, 0x02)
    assert (session.IN_BYTES, session.OUT_BYTES, session.IN_PKTS, session.OUT_PKTS) == (900, 4000, 6, 5)
    assert (session.CLIENT_TCP_FLAGS, session.SERVER_TCP_FLAGS, session.TCP_FLAGS) == (0x1B, 0x1A, 0x1B)


def test_ipv6_addresses_become_text():
    fields = [(27, 16), (28, 16), (7, 2), (11, 2), (4, 1), (1, 4), (2, 4)]
    d = Decoder()
    d.feed(ipfix([set_(2, template_record(330, fields, ipfix=True)),
                  set_(330, ip("2001:db8::1") + ip("ff02::c") + uint(5000, 2) + uint(3702, 2) + uint(17, 1)
                       + uint(700, 4) + uint(1, 4))]), EXPORTER, 0.0)
    (frame,) = frames(d)
    assert (frame.loc[0, "IPV4_SRC_ADDR"], frame.loc[0, "IPV4_DST_ADDR"]) == ("2001:db8::1", "ff02::c")


# ---- bad input -------------------------------------------------------------------
def field_spec_pair() -> bytes:
    return struct.pack("!HHHH", 8, 4, 1, 4)


GOOD = softflowd_v9([softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1, 1, 2)])

BAD = {
    "short_header": [b"\x00\x09\x00", b"\x00\x0a" + bytes(10), b"\x00\x05" + bytes(10), b"\x09"],
    "length_mismatch": [ipfix([], length=40), ipfix([set_(2, b"")])[:-1] + b""],
    "v5_count": [v5([], count=0), v5([], count=31), v5([{"src": "1.1.1.1", "dst": "1.1.1.2", "sport": 1, "dport": 2,
                                                        "proto": 6, "pkts": 1, "bytes": 1, "first": 0, "last": 0}],
                                                      count=2)],
    "set_length": [v9([struct.pack("!HH", 0, 2)]), v9([struct.pack("!HH", 1024, 400) + bytes(10)])],
    "reserved_set_id": [v9([set_(7, bytes(8))]), ipfix([set_(4, bytes(8))])],
    "template_id": [v9([set_(0, template_record(12, SOFTFLOWD_V4, ipfix=False))])],
    "template_empty": [v9([set_(0, struct.pack("!HH", 1024, 0))])],
    "template_truncated": [v9([set_(0, struct.pack("!HH", 1024, 50) + bytes(12))])],
    "template_field_length": [v9([set_(0, template_record(1024, [(8, 4), (1, 0)], ipfix=False))]),
                              v9([set_(0, template_record(1024, [(8, 0xFFFF)], ipfix=False))])],
    "template_absurd": [ipfix([set_(2, struct.pack("!HH", 400, 20_000) + bytes(16))]),
                        ipfix([set_(2, template_record(401, [(1, 40_000), (2, 40_000)], ipfix=True))])],
    "options_template": [ipfix([set_(3, struct.pack("!HHH", 256, 2, 0) + field_spec_pair())]),
                         v9([set_(1, struct.pack("!HHH", 256, 3, 4) + bytes(8))])],
    "record_overrun": [ipfix([set_(2, template_record(402, [(96, 0xFFFF), (1, 4)], ipfix=True)),
                              set_(402, b"\x30" + b"abc" + bytes(4))])],
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_each_bad_input_is_counted_by_reason_and_decoding_goes_on(reason):
    d = Decoder()
    for datagram in BAD[reason]:
        d.feed(datagram, EXPORTER, 0.0)
    assert d.counters.malformed[reason] == len(BAD[reason]), dict(d.counters.malformed)
    assert sum(d.counters.malformed.values()) == len(BAD[reason])
    d.take()
    d.feed(GOOD, "192.0.2.77", 0.0)
    assert len(raw(d)[0]) == 1


def test_unknown_versions_are_counted():
    d = Decoder()
    for version in (1, 7, 8, 11, 0xFFFF):
        d.feed(struct.pack("!H", version) + bytes(40), EXPORTER, 0.0)
    assert d.counters.unknown_version == 5 and d.counters.packets == 5


def test_a_bad_set_keeps_the_sets_before_it():
    rec = softflowd_record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1, 1, 2)
    datagram = v9([set_(0, template_record(1024, SOFTFLOWD_V4, ipfix=False)), set_(1024, rec),
                   struct.pack("!HH", 1024, 999)])
    d = Decoder()
    d.feed(datagram, EXPORTER, 0.0)
    assert d.counters.records == 1 and d.counters.malformed["set_length"] == 1
    assert np.asarray(raw(d)[0].columns["IN_BYTES"]).tolist() == [100]


def test_a_varlen_field_with_no_length_byte_left_is_an_overrun_not_a_crash():
    """Found by the long atheris run: a record's earlier fields took the set's last bytes, then a
    variable-length field had no length byte to read (IndexError before)."""
    from flowsentinel.collector.templates import VARLEN, Field, RecordError, Template

    t = Template(256, (Field(82, VARLEN), Field(1, 4), Field(83, VARLEN)), version=10)
    assert t.record_length == 6  # 4 fixed bytes and a length byte per variable-length field
    whole = bytes([1]) + b"x" + (100).to_bytes(4, "big") + bytes([0])
    assert int(t.decode(whole, 0, len(whole))["f1"][0]) == 100
    cut = whole[:6]  # as long as record_length, but the last field's length byte is missing
    with pytest.raises(RecordError, match="record_overrun"):
        t.decode(cut, 0, len(cut))
