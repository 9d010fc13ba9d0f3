"""Check a capture file before metering it.

The packet engine reads captures through libpcap, which stops quietly at a
truncated record and cannot say how many packets a file holds. This module
walks the record headers of a pcap or pcapng file (seeking over packet data,
so it never holds more than one header in memory) to learn the link type, the
number of packets and whether the file ends in the middle of a record. The
meter uses that to refuse files it cannot read with a one-line reason and to
report how many packets it skipped.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MeterError

__all__ = ["CaptureInfo", "MeterError", "SUPPORTED_LINKTYPES", "inspect_capture"]

log = logging.getLogger(__name__)


# Link types the packet engine decodes into IP packets (libpcap DLT numbers).
SUPPORTED_LINKTYPES: dict[int, str] = {
    0: "NULL (BSD loopback)",
    1: "EN10MB (Ethernet)",
    12: "RAW (IP)",
    14: "RAW (IP)",
    101: "RAW (IP)",
    104: "C_HDLC",
    105: "IEEE802_11",
    108: "LOOP",
    113: "LINUX_SLL",
    127: "IEEE802_11_RADIO",
    192: "PPI",
    228: "IPV4",
    229: "IPV6",
    276: "LINUX_SLL2",
}

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "pcap"),
    b"\xa1\xb2\xc3\xd4": (">", "pcap"),
    b"\x4d\x3c\xb2\xa1": ("<", "pcap-ns"),
    b"\xa1\xb2\x3c\x4d": (">", "pcap-ns"),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
# pcapng block types that carry one packet each.
_PCAPNG_PACKET_BLOCKS = {2, 3, 6}
# A record larger than this is a corrupt length field, not a real packet.
_MAX_RECORD = 256 * 1024 * 1024


@dataclass
class CaptureInfo:
    """What a walk over a capture file's records found.

    ``packets`` counts the complete packet records; ``truncated`` is set when
    the file ends inside a record (the partial record is not counted);
    ``linktypes`` lists the link types declared by the file (one for pcap,
    one per interface for pcapng).
    """

    path: Path
    format: str
    size_bytes: int
    packets: int = 0
    truncated: bool = False
    linktypes: list[int] = field(default_factory=list)
    first_ts: float | None = None

    @property
    def unsupported_linktypes(self) -> list[int]:
        return [lt for lt in self.linktypes if lt not in SUPPORTED_LINKTYPES]


def inspect_capture(path: str | os.PathLike) -> CaptureInfo:
    """Walk a pcap/pcapng file's records; raise :class:`MeterError` if it is not one.

    A file that ends inside a record is accepted (``truncated`` is set and a
    warning is logged): the complete records before the cut are still worth
    metering.
    """
    p = Path(path)
    if not p.exists():
        raise MeterError(f"{p}: no such capture file; check the path")
    if p.is_dir():
        raise MeterError(f"{p}: is a directory, not a capture file")
    size = p.stat().st_size
    if size == 0:
        raise MeterError(f"{p}: empty file (0 bytes), not a pcap/pcapng capture")
    try:
        with open(p, "rb") as fh:
            head = fh.read(4)
            if head in _PCAP_MAGICS:
                info = _walk_pcap(fh, p, size, *_PCAP_MAGICS[head])
            elif head == _PCAPNG_SHB:
                info = _walk_pcapng(fh, p, size)
            else:
                raise MeterError(
                    f"{p}: not a pcap or pcapng capture (first bytes {head.hex()}); "
                    "convert it with editcap or record it with tcpdump -w"
                )
    except OSError as exc:
        raise MeterError(f"{p}: cannot read capture: {exc.strerror or exc}") from None
    if info.truncated:
        log.warning(
            "%s: capture is truncated (ends inside a record); metering the %d complete packet(s) before the cut",
            p,
            info.packets,
        )
    bad = info.unsupported_linktypes
    if bad:
        raise MeterError(
            f"{p}: unsupported link type {', '.join(map(str, bad))}; the meter decodes "
            f"{', '.join(sorted(set(SUPPORTED_LINKTYPES.values())))}"
        )
    return info


def _walk_pcap(fh, p: Path, size: int, endian: str, fmt: str) -> CaptureInfo:
    rest = fh.read(20)
    info = CaptureInfo(path=p, format=fmt, size_bytes=size)
    if len(rest) < 20:
        raise MeterError(f"{p}: truncated pcap header ({size} bytes); the file holds no packets")
    _vmaj, _vmin, _tz, _sig, _snap, linktype = struct.unpack(endian + "HHiIII", rest)
    # The upper bits of the link-type field carry FCS information (pcap spec).
    info.linktypes.append(linktype & 0x0FFFFFFF)
    rec = struct.Struct(endian + "IIII")
    pos = 24
    while pos < size:
        if pos + 16 > size:
            info.truncated = True
            break
        fh.seek(pos)
        ts_sec, _ts_frac, incl_len, _orig = rec.unpack(fh.read(16))
        if incl_len > _MAX_RECORD:
            raise MeterError(
                f"{p}: corrupt pcap record at byte offset {pos} (length {incl_len}); "
                "the file is damaged; try repairing it with pcapfix"
            )
        if pos + 16 + incl_len > size:
            info.truncated = True
            break
        if info.first_ts is None:
            info.first_ts = float(ts_sec)
        info.packets += 1
        pos += 16 + incl_len
    return info


def _walk_pcapng(fh, p: Path, size: int) -> CaptureInfo:
    info = CaptureInfo(path=p, format="pcapng", size_bytes=size)
    pos = 0
    endian = "<"
    while pos < size:
        if pos + 12 > size:
            info.truncated = True
            break
        fh.seek(pos)
        hdr = fh.read(12)
        if hdr[:4] == _PCAPNG_SHB:
            bom = hdr[8:12]
            if bom == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise MeterError(f"{p}: corrupt pcapng section header at byte offset {pos}")
        btype, blen = struct.unpack(endian + "II", hdr[:8])
        if blen < 12 or blen % 4 or blen > _MAX_RECORD:
            raise MeterError(
                f"{p}: corrupt pcapng block at byte offset {pos} (length {blen}); "
                "the file is damaged; try repairing it with pcapfix"
            )
        if pos + blen > size:
            info.truncated = True
            break
        if btype == 1:  # Interface Description Block: link type is the first field.
            (linktype,) = struct.unpack(endian + "H", hdr[8:10])
            info.linktypes.append(linktype)
        elif btype in _PCAPNG_PACKET_BLOCKS:
            info.packets += 1
        pos += blen
    return info
