"""Bad input: a one-line MeterError or a warning with counts; never a traceback or a hang."""

from __future__ import annotations

import argparse
import logging
import struct

import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")

from flowsentinel.metering import MeterError, add_meter_arguments, inspect_capture, meter_capture, run_meter  # noqa: E402
from tests.metering.pcapgen import ipv4, udp, write_pcap  # noqa: E402


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="flowsentinel meter")
    add_meter_arguments(parser)
    return run_meter(parser.parse_args(argv))


def _three_udp(tmp_path):
    return write_pcap(tmp_path / "ok.pcap", [(float(i), ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, b"abc"))) for i in range(3)])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.pcap", b"", "empty file"),
        ("notes.pcap", b"this is a text file, not a capture\n", "not a pcap or pcapng capture"),
        ("short.pcap", b"\xd4\xc3\xb2\xa1\x02\x00", "truncated pcap header"),
    ],
)
def test_not_a_capture(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MeterError, match=message) as err:
        meter_capture(path)
    text = str(err.value)
    assert str(path) in text and "\n" not in text


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MeterError, match="no such capture file"):
        meter_capture(tmp_path / "absent.pcap")
    with pytest.raises(MeterError, match="is a directory"):
        meter_capture(tmp_path)


def test_unknown_link_type(tmp_path):
    path = write_pcap(tmp_path / "usb.pcap", [(1.0, b"\x00" * 40)], linktype=189)  # USB_LINUX
    with pytest.raises(MeterError, match="unsupported link type 189"):
        meter_capture(path)


def test_truncated_pcap_meters_the_complete_records(tmp_path, caplog):
    whole = _three_udp(tmp_path).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-10])  # the last record loses its tail
    with caplog.at_level(logging.WARNING):
        run = meter_capture(cut)
        df = run.to_pandas()
    assert run.stats.truncated and run.stats.packets_seen == 2
    assert int(df["IN_PKTS"].sum()) == 2
    assert "truncated" in caplog.text and "2 complete packet" in caplog.text


def test_truncated_pcapng(tmp_path, pcaps):
    data = (pcaps / "ndpi" / "http.pcapng").read_bytes()
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(data[: len(data) // 2])
    info = inspect_capture(cut)
    assert info.format == "pcapng" and info.truncated and 0 < info.packets < 10
    run = meter_capture(cut)
    df = run.to_pandas()
    assert int(df["IN_PKTS"].sum() + df["OUT_PKTS"].sum()) == info.packets == run.stats.packets_metered
    with pytest.raises(RuntimeError, match="only once"):
        list(run)


def test_header_only_capture_warns_and_gives_no_flows(tmp_path, caplog):
    path = write_pcap(tmp_path / "none.pcap", [])
    with caplog.at_level(logging.WARNING):
        df = meter_capture(path).to_pandas()
    assert len(df) == 0 and "IN_BYTES" in df.columns
    assert "no packets" in caplog.text


def test_non_ip_packets_are_counted(tmp_path, caplog):
    arp = b"\xff" * 6 + b"\x00\x11\x22\x33\x44\x55" + b"\x08\x06" + b"\x00" * 28
    ip = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00" + ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, b"x"))
    path = tmp_path / "mixed.pcap"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate((arp, ip, arp)):
            fh.write(struct.pack("<IIII", i + 1, 0, len(frame), len(frame)) + frame)
    with caplog.at_level(logging.WARNING):
        run = meter_capture(path)
        run.to_pandas()
    assert (run.stats.packets_seen, run.stats.packets_metered, run.stats.packets_ignored) == (3, 1, 2)
    assert "2 of 3 packet(s) are in no flow" in caplog.text


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pcap"
    bad.write_text("not a capture")
    assert _cli([str(bad), "-o", str(tmp_path / "out.csv"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()
    assert _cli(["-o", str(tmp_path / "out.csv")]) == 2  # neither capture nor interface
    assert _cli([str(bad), "-o", "x.csv", "--idle-timeout", "0"]) == 2
    assert _cli(["--interface", "no-such-if0", "-o", str(tmp_path / "o.csv")]) == 2
    assert "no such network interface" in capsys.readouterr().err
