"""Counters of a collector run, and the kernel's drop counter of its socket.

Every datagram the collector reads is counted under its version or as an
unknown version; its sets are decoded, held for their template, or skipped
and counted as malformed by reason. :meth:`Counters.line` is the one-line
summary that the collector logs every ``stats_every_s`` and prints at the
end.

>>> c = Counters()
>>> c.packets += 3; c.malformed["set_length"] += 1; c.records += 60
>>> c.line()[:52]
'packets 3 (v5 0, v9 0, IPFIX 0), records 60, options'
>>> "malformed 1 (set_length 1)" in c.line()
True
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["Counters", "MALFORMED_REASONS", "UdpSocketRow", "kernel_drops", "udp_sockets"]

log = logging.getLogger(__name__)

#: Why a datagram (or the rest of it) was skipped: the label values of ``malformed``.
MALFORMED_REASONS = (
    "short_header",        # shorter than its version's header
    "length_mismatch",     # IPFIX message length differs from the datagram's
    "v5_count",            # v5 record count 0, above 30, or more records than bytes
    "set_length",          # a set shorter than its header or running past the datagram
    "reserved_set_id",     # a set id that no version assigns (v9 2-255, IPFIX 4-255)
    "template_id",         # a template id below 256
    "template_empty",      # a template with no fields (v9), or an IPFIX withdrawal of an options set id
    "template_truncated",  # field specifiers running past the set
    "template_field_length",  # a field of length 0
    "template_absurd",     # records longer than a datagram can carry
    "options_template",    # an options template whose scope count is 0 or exceeds its fields
    "record_overrun",      # a variable-length field running past its set
)
_LATENCY_WINDOW = 100_000


@dataclass
class Counters:
    """What a collector has received, decoded, held, dropped, stitched, scored and alerted."""

    packets: int = 0
    bytes: int = 0
    by_version: Counter = field(default_factory=Counter)
    records: int = 0
    options_records: int = 0
    templates: int = 0
    templates_refreshed: int = 0
    templates_changed: int = 0
    templates_withdrawn: int = 0
    templates_expired: int = 0
    options_templates: int = 0
    sets_held: int = 0
    records_released: int = 0
    held_dropped: Counter = field(default_factory=Counter)
    malformed: Counter = field(default_factory=Counter)
    unknown_version: int = 0
    sequence_gaps: int = 0
    kernel_drops: int = 0
    flows: int = 0
    flows_stitched: int = 0
    flows_one_way: int = 0
    flows_biflow: int = 0
    flows_scored: int = 0
    alerts: int = 0
    batches: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW), repr=False)

    def add_latencies(self, seconds: np.ndarray) -> None:
        self.latencies.extend(np.asarray(seconds, dtype="float64").tolist())

    def latency(self) -> dict[str, float]:
        """Seconds from a flow's first record arriving to its verdict being written (last 100,000 flows)."""
        if not self.latencies:
            return {}
        values = np.fromiter(self.latencies, dtype="float64")
        return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)),
                "max": float(values.max())}

    def line(self) -> str:
        v = self.by_version
        bad = sum(self.malformed.values())
        reasons = ", ".join(f"{k} {n:,}" for k, n in sorted(self.malformed.items()) if n)
        dropped = sum(self.held_dropped.values())
        text = (
            f"packets {self.packets:,} (v5 {v[5]:,}, v9 {v[9]:,}, IPFIX {v[10]:,}), records {self.records:,}, "
            f"options records {self.options_records:,}, held sets {self.sets_held:,} "
            f"(released {self.records_released:,}, dropped {dropped:,}), malformed {bad:,}"
            + (f" ({reasons})" if reasons else "")
            + f", unknown version {self.unknown_version:,}, sequence gaps {self.sequence_gaps:,}, "
            f"kernel drops {self.kernel_drops:,}, flows {self.flows:,} (stitched {self.flows_stitched:,}, "
            f"one-way {self.flows_one_way:,}, biflow {self.flows_biflow:,}), scored {self.flows_scored:,}, "
            f"alerts {self.alerts:,}"
        )
        lat = self.latency()
        if lat:
            text += f", latency p50 {lat['p50']:.3f} s p99 {lat['p99']:.3f} s max {lat['max']:.3f} s"
        return text

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("latencies")
        for key in ("by_version", "held_dropped", "malformed"):
            out[key] = {str(k): n for k, n in getattr(self, key).items()}
        out["latency_s"] = self.latency()
        return out


class UdpSocketRow(NamedTuple):
    """One line of ``/proc/net/udp``: the local port, the socket's inode and its drop count."""

    port: int
    inode: int
    drops: int


def udp_sockets(family: int = socket.AF_INET) -> list[UdpSocketRow]:
    """The UDP sockets the kernel lists in ``/proc/net/udp`` (``udp6`` for IPv6); empty where unreadable.

    The last column of a line counts the datagrams the kernel dropped
    because that socket's receive buffer was full.
    """
    table = "/proc/net/udp6" if family == socket.AF_INET6 else "/proc/net/udp"
    rows = []
    try:
        with open(table) as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if len(parts) >= 13:
                    rows.append(UdpSocketRow(int(parts[1].rsplit(":", 1)[1], 16), int(parts[9]), int(parts[-1])))
    except (OSError, StopIteration, ValueError) as exc:
        log.debug("cannot read %s: %s", table, exc)
    return rows


def kernel_drops(sock: socket.socket) -> int | None:
    """The kernel's drop count for a UDP socket, found by its inode; ``None`` if not found."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except OSError:
        return None
    return next((row.drops for row in udp_sockets(sock.family) if row.inode == inode), None)
