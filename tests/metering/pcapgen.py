"""Hand-made packets and captures for the metering tests, and where the shared captures live."""

from __future__ import annotations

import struct
from pathlib import Path

from flowsentinel.paths import data_dir

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / "tests" / "golden" / "metering"




def data_root() -> Path:
    return data_dir()




def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, l4: bytes, ttl: int = 64) -> bytes:
    """An IPv4 packet (no options) around an L4 header and payload."""
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, ttl, proto, 0,
        bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))),
    )
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    return hdr + l4


def tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"", win: int = 1000) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, win, 0, 0) + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(type_: int, code: int, payload: bytes = b"\0" * 8) -> bytes:
    return struct.pack("!BBH", type_, code, 0) + payload


def write_pcap(path: Path, packets: list[tuple[float, bytes]], linktype: int = 1) -> Path:
    """Write (time, IP packet) pairs as an Ethernet (or other link type) pcap."""
    eth = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\x08\x00"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for ts, ip in packets:
            frame = (eth + ip) if linktype == 1 else ip
            sec = int(ts)
            fh.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(frame), len(frame)))
            fh.write(frame)
    return path
