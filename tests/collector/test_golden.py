"""Golden tests: the collector's decoding of softflowd's exports equals nfdump's, capture by capture.

Each golden file (``tests/golden/collector/*.json``, written by
``scripts/regen_collector_golden.py``) holds, for one shared capture and each
of softflowd's exports of it (NetFlow v5, v9, IPFIX, bidirectional IPFIX),
the records nfdump's nfcapd stored from the same datagrams. The test runs
softflowd again and compares the collector's records with them: per record,
addresses, ports, protocol, ICMP type, packets and bytes in each direction,
TCP flags and both times (allowing for the three nfdump 1.7.1 quirks named
in :mod:`flowsentinel.collector.answer_key`).
"""

from __future__ import annotations

import json

import pytest

from flowsentinel.collector.answer_key import decoded_rows, differences, digest, nfdump_rows
from flowsentinel.collector.peers import EXPORTS, nfcapd_collect, softflowd_export
from tests.collector.conftest import GOLDEN_DIR, needs

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))
CASES = [(path, name) for path in GOLDEN_FILES for name in EXPORTS]


def test_golden_files_cover_every_shared_capture(pcaps):
    captures = sorted(p.relative_to(pcaps.parent).as_posix() for sub in ("ndpi", "ppa", "slips", "attacks")
                      for p in (pcaps / sub).rglob("*") if p.suffix in (".pcap", ".pcapng"))
    covered = sorted(json.loads(p.read_text())["capture"] for p in GOLDEN_FILES)
    assert covered == captures, "run scripts/regen_collector_golden.py"


@pytest.mark.parametrize("golden,export", CASES, ids=[f"{p.stem}-{n}" for p, n in CASES])
def test_decoding_equals_nfdump(golden, export, pcaps):
    needs("softflowd")
    want = json.loads(golden.read_text())
    entry = want["exports"][export]
    capture = pcaps.parent / want["capture"]
    got = softflowd_export(capture, EXPORTS[export])
    assert got.kernel_drops == 0
    rows, uptimes = decoded_rows(got.datagrams)
    assert len(rows) == entry["records"]
    assert sum(r[6] + r[8] for r in rows) == entry["packets"] and sum(r[7] + r[9] for r in rows) == entry["bytes"]
    if "rows" in entry:
        assert differences(rows, entry["rows"], ipfix_uptimes=uptimes) == []
    else:
        assert digest(rows, decoded=True) == entry["digest"]


@pytest.mark.parametrize("capture", ["ppa/http_espn.pcapng", "ndpi/coap_mqtt.pcap"])
@pytest.mark.parametrize("export", list(EXPORTS))
def test_live_nfcapd_agrees_on_the_same_datagrams(capture, export, pcaps):
    """The golden files' peer, run now: nfcapd and the collector receive the same datagrams."""
    needs("softflowd", "nfcapd", "nfdump")
    got = softflowd_export(pcaps / capture, EXPORTS[export])
    records, summary = nfcapd_collect(got.datagrams)
    rows, uptimes = decoded_rows(got.datagrams)
    assert "Bad Packets: 0" in summary
    assert differences(rows, nfdump_rows(records), ipfix_uptimes=uptimes) == []


@pytest.mark.parametrize("export", ["v5", "v9", "ipfix"])
def test_softflowd_sampling_is_scaled_as_declared(export, pcaps):
    """softflowd -s 4 keeps one packet in four and says so; the collector multiplies back.

    v5 declares the rate in its header, and nfcapd scales too; v9 and IPFIX
    declare it in an options record (samplingInterval; samplingPacketInterval
    and Space), which nfdump 1.7.1 does not apply, so its counters are a
    quarter of the collector's there.
    """
    needs("softflowd", "nfcapd", "nfdump")
    got = softflowd_export(pcaps / "ppa" / "http_espn.pcapng", EXPORTS[export] + ("-s", "4"))
    records, _ = nfcapd_collect(got.datagrams)
    rows, uptimes = decoded_rows(got.datagrams)
    answer = nfdump_rows(records)
    if export != "v5":
        answer = [r[:6] + [4 * v for v in r[6:10]] + r[10:] for r in answer]
    assert differences(rows, answer, ipfix_uptimes=uptimes) == []
    # Sampled one in four, scaled by four: the capture's 956 packets, give or take the sampling's phase.
    assert abs(sum(r[6] + r[8] for r in rows) - 956) < 4 * len(rows)
