"""Golden-file tests: the meter on the shared real captures.

Each golden file (``tests/golden/metering/*.json``, written by
``scripts/regen_metering_golden.py``) holds every flow the meter produced for
one capture and, for nDPI's regression captures, the comparison with nDPI's
own answer key (``<capture>.ndpiReader.out``).
"""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")

from flowsentinel.metering import MeterConfig, meter_capture  # noqa: E402
from flowsentinel.metering.answer_key import compare_with_answer_key, golden_record, parse_answer_key  # noqa: E402
from flowsentinel.schema import TIME_COLUMNS, V2_FEATURES  # noqa: E402
from tests.metering.pcapgen import GOLDEN_DIR  # noqa: E402

GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))

# Where the meter and nDPI's answer key disagree, and why (see docs/metering.md).
KNOWN_DIFFERENCES = {
    # The capture holds 48 client packets (3465 bytes) for this flow; ndpiReader lists 43 (3135).
    ("ndpi/telnet.pcap", "TCP 192.168.0.2:1550 <-> 192.168.0.1:23", "counts"),
    # The newer nDPI inside nfstream names the OpenDNS certificate: TLS.OpenDNS (91.225), not plain TLS (91).
    ("ndpi/malware.pcap", "TCP 192.168.7.7:35236 <-> 67.215.92.210:443", "l7"),
}


def test_golden_files_exist():
    assert len(GOLDEN_FILES) >= 17, f"golden files missing in {GOLDEN_DIR}; run scripts/regen_metering_golden.py"


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


@pytest.mark.parametrize("golden", GOLDEN_FILES, ids=lambda p: p.stem)
def test_capture_matches_golden(golden, pcaps):
    want = json.loads(golden.read_text())
    capture = pcaps.parent / want["capture"]
    if not capture.exists():
        pytest.skip(f"{capture} not in the shared data folder")
    got = golden_record(capture, pcaps.parent)
    assert got["stats"] == want["stats"]
    assert got["columns"] == want["columns"]
    assert got["columns"][: len(V2_FEATURES)] == V2_FEATURES
    assert got["columns"][len(V2_FEATURES) : len(V2_FEATURES) + 2] == list(TIME_COLUMNS)
    assert len(got["flows"]) == len(want["flows"])
    for i, (g, w) in enumerate(zip(got["flows"], want["flows"])):
        diff = [c for c, x, y in zip(want["columns"], g, w) if not _same(x, y)]
        assert not diff, f"{want['capture']} flow {i}: columns {diff} differ from the golden file"
    assert got.get("answer_key") == want.get("answer_key")


def _answer_key_captures(pcaps):
    return sorted(p for p in (pcaps / "ndpi").iterdir() if p.suffix in (".pcap", ".pcapng"))


def test_agreement_with_ndpi_answer_keys(pcaps):
    """Packets and bytes per direction and the L7 id agree with ndpiReader, flow by flow."""
    compared = agree_counts = agree_l7 = 0
    unexpected = []
    for cap in _answer_key_captures(pcaps):
        key = cap.with_name(cap.name + ".ndpiReader.out")
        answer = parse_answer_key(key)
        df = meter_capture(cap, MeterConfig(link_layer_bytes=True)).to_pandas()
        result = compare_with_answer_key(df, answer)
        compared += result["answer_flows"]
        agree_counts += result["counts_agree"]
        agree_l7 += result["l7_agree"]
        rel = f"ndpi/{cap.name}"
        unexpected += [(rel, d) for d in result["differences"] if (rel, d["flow"], d["what"]) not in KNOWN_DIFFERENCES]
    assert not unexpected, f"disagreements with nDPI's answer keys: {unexpected}"
    assert compared >= 51
    assert agree_counts >= compared - 1 and agree_l7 >= compared - 1


def test_badpackets_answer_key_is_empty_but_meter_finds_93_flows(pcaps):
    # nDPI's answer file for this capture is empty; its SOURCE note says 93 one-packet UDP flows.
    df = meter_capture(pcaps / "ndpi" / "badpackets.pcap").to_pandas()
    assert len(df) == 93
    assert set(df["PROTOCOL"]) == {17}
    assert (df["IN_PKTS"] + df["OUT_PKTS"] == 1).all()
