"""Settings of the NetFlow/IPFIX collector, with their defaults and why.

>>> cfg = CollectorConfig()
>>> cfg.batch_wait_s + cfg.stitch_wait_s < 1.0  # an alert leaves within 1 s of its record
True
>>> CollectorConfig(batch_size=0)
Traceback (most recent call last):
...
flowsentinel.errors.ConfigError: collector: batch_size must be at least 1, got 0
>>> parse_listen("127.0.0.1:2055")
('127.0.0.1', 2055)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError, UsageError

__all__ = ["CollectorConfig", "parse_listen"]


@dataclass(frozen=True)
class CollectorConfig:
    """How the collector receives, decodes, stitches and batches flow records.

    Attributes:
        receive_buffer: socket receive buffer in bytes (``SO_RCVBUF``;
            ``SO_RCVBUFFORCE`` where the process may exceed
            ``net.core.rmem_max``). An exporter reading a capture file sends
            its whole export at once; 8 MiB holds about 5,500 datagrams of
            1,400 bytes, the kernel's default of 208 KiB about 150.
        batch_size: flows per micro-batch; a batch is scored when it holds
            this many flows ...
        batch_wait_s: ... or when its oldest record has waited this long,
            whichever comes first.
        stitch_wait_s: how long a one-way record waits for the record of the
            opposite direction before it is scored alone (with ``OUT_*`` 0).
            With ``batch_wait_s`` this bounds the time from a record's
            arrival to its alert: 0.5 + 0.25 s by default, under 1 s.
        stitch_gap_ms: the two records of one conversation must overlap in
            time within this margin (exporters time the directions apart).
        template_timeout_s: a template not refreshed for this long is
            dropped. Exporters resend templates (softflowd every 16 export
            packets), and RFC 7011 section 8.4 asks UDP collectors to expire
            templates that are not.
        hold_s: data sets whose template has not arrived are kept this long,
            then dropped and counted ...
        max_held_sets: ... and at most this many of them in all.
        apply_sampling: multiply packets and bytes by the sampling rate the
            exporter declares (v5 header, v9/IPFIX options records).
        stats_every_s: seconds between the counter log lines (0: never).
        max_packets_per_read: datagrams read from the socket between two
            checks of the batch clock.
    """

    receive_buffer: int = 8 * 1024 * 1024
    batch_size: int = 4096
    batch_wait_s: float = 0.25
    stitch_wait_s: float = 0.5
    stitch_gap_ms: int = 2000
    template_timeout_s: float = 1800.0
    hold_s: float = 30.0
    max_held_sets: int = 4096
    apply_sampling: bool = True
    stats_every_s: float = 60.0
    max_packets_per_read: int = 512

    def __post_init__(self):
        for name in ("receive_buffer", "batch_size", "max_held_sets", "max_packets_per_read"):
            if getattr(self, name) < 1:
                raise ConfigError(f"collector: {name} must be at least 1, got {getattr(self, name)}")
        for name in ("batch_wait_s", "stitch_wait_s", "stitch_gap_ms", "template_timeout_s", "hold_s",
                     "stats_every_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"collector: {name} may not be negative, got {getattr(self, name)}")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a ``(host, port)`` pair."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT with a port from 1 to 65535, e.g. 0.0.0.0:2055")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)
