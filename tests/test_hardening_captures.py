"""Mutated captures through the meter: a one-line MeterError, or every packet accounted for.

Seeds: a capture generated here (TCP, UDP and ICMP over Ethernet) and, where
the shared data is, two small benign captures (``use = train`` in
``pcaps/labels.csv``): a pcap and a pcapng. Hypothesis flips, inserts and
deletes bytes, cuts the file and repeats stretches of it; each mutant is
inspected and metered whole. What must hold: no exception other than
:class:`~flowsentinel.errors.MeterError`, whose message is one line naming
the file; otherwise packets seen = packets in flows + packets ignored, and the
rows the meter yields are the flows it counts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")
pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from flowsentinel.errors import MeterError  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402
from tests.metering import pcapgen  # noqa: E402

EXAMPLES = int(os.environ.get("FLOWSENTINEL_FUZZ_EXAMPLES", "30"))
SHARED = ("benign/ndpi-apps/snmp.pcap", "benign/ndpi-apps/tls_1.2_unidirectional_server.pcapng")


def _generated(folder: Path) -> bytes:
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
    packets = [
        (1.0, eth + pcapgen.ipv4("10.0.0.1", "10.0.0.2", 6, pcapgen.tcp(40000, 80, 1, 0x02))),
        (1.1, eth + pcapgen.ipv4("10.0.0.2", "10.0.0.1", 6, pcapgen.tcp(80, 40000, 9, 0x12))),
        (1.2, eth + pcapgen.ipv4("10.0.0.1", "10.0.0.2", 6, pcapgen.tcp(40000, 80, 2, 0x18, b"GET / HTTP/1.0\r\n\r\n"))),
        (2.0, eth + pcapgen.ipv4("10.0.0.3", "10.0.0.9", 17, pcapgen.udp(5353, 53, b"\x12\x34" + b"\0" * 10))),
        (3.0, eth + pcapgen.ipv4("10.0.0.4", "10.0.0.1", 1, pcapgen.icmp(8, 0))),
    ]
    return pcapgen.write_pcap(folder / "gen.pcap", packets).read_bytes()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[tuple[str, bytes]]:
    out = [("gen.pcap", _generated(tmp_path_factory.mktemp("gen")))]
    for rel in SHARED:
        path = data_dir() / "pcaps" / rel
        if path.is_file():
            out.append((path.name, path.read_bytes()))
    return out


@st.composite
def mutations(draw, size: int):
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "repeat"]))
        at = draw(st.integers(0, max(size - 1, 0)))
        ops.append((kind, at, draw(st.integers(0, 255)), draw(st.integers(1, 64))))
    return ops


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for kind, at, byte, n in ops:
        at = min(at, max(len(b) - 1, 0))
        if kind == "flip" and b:
            b[at] ^= 1 << (byte % 8)
        elif kind == "set" and b:
            b[at] = byte
        elif kind == "insert":
            b[at:at] = bytes([byte]) * n
        elif kind == "delete":
            del b[at:at + n]
        elif kind == "cut":
            del b[at:]
        elif kind == "repeat":
            b[at:at] = b[at:at + n]
    return bytes(b)


def check_capture(path: Path) -> str:
    """Meter one file; the outcome ('refused' or 'metered'), after checking the invariants."""
    from flowsentinel.metering import meter_capture

    try:
        run = meter_capture(path)
        rows = sum(len(frame) for frame in run)
    except MeterError as exc:
        text = str(exc).strip()
        assert text and "\n" not in text and str(path) in text, text
        return "refused"
    s = run.stats
    assert s.packets_seen == s.packets_metered + s.packets_ignored, s
    assert rows == s.flows and s.flows <= s.packets_metered, s
    return "metered"


def test_the_seeds_meter_cleanly(seeds, tmp_path):
    for name, data in seeds:
        path = tmp_path / name
        path.write_bytes(data)
        assert check_capture(path) == "metered"


@pytest.mark.fuzz
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_captures_are_refused_or_accounted_for(seeds, tmp_path_factory, data):
    name, seed = data.draw(st.sampled_from(seeds), label="seed")
    ops = data.draw(mutations(len(seed)), label="mutations")
    path = tmp_path_factory.mktemp("fuzz-capture") / name
    path.write_bytes(_mutate(seed, ops))
    check_capture(path)
