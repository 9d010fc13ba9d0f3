"""Settings of the packets-to-flows meter."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["MeterConfig"]


@dataclass(frozen=True)
class MeterConfig:
    """How packets are grouped into flows and what is written for each flow.

    >>> MeterConfig().schema
    'v2'
    >>> MeterConfig(schema="v4")
    Traceback (most recent call last):
    ...
    flowsentinel.errors.ConfigError: MeterConfig.schema: 'v4' is not a metered schema; use 'v1' or 'v2'
    """

    #: Output column set: ``"v2"`` (43 NF v2 features) or ``"v1"`` (12 features).
    schema: str = "v2"
    #: A flow with no packet for this many seconds is closed (nfstream's default;
    #: nProbe's own default is 30 s).
    idle_timeout: int = 120
    #: A flow open for this many seconds is closed and a new one started
    #: (nfstream's default; nProbe's lifetime timeout defaults to 120 s).
    active_timeout: int = 1800
    #: Bytes of each packet captured on a live interface.
    snaplen: int = 1536
    #: Berkeley packet filter applied before metering, e.g. ``"tcp or udp"``.
    bpf_filter: str | None = None
    #: Flows per DataFrame chunk yielded by the meter.
    chunk_size: int = 10_000
    #: Decode GTP/CAPWAP/TZSP tunnels and meter the inner packets.
    decode_tunnels: bool = True
    #: Packet-processing processes (``1`` keeps flows in expiry order and is
    #: the fastest choice on small machines).
    n_meters: int = 1
    #: Add a ``FLOW_ID`` column (0, 1, ... in expiry order).
    flow_id: bool = False
    #: Add ``IN_L2_BYTES``/``OUT_L2_BYTES``: bytes counted on the wire with the
    #: link-layer header, the way nDPI's ndpiReader counts them.
    link_layer_bytes: bool = False
    #: Put the capture interface in promiscuous mode (live metering only).
    promiscuous: bool = True

    def __post_init__(self) -> None:
        if self.schema not in ("v1", "v2"):
            raise ConfigError(f"MeterConfig.schema: {self.schema!r} is not a metered schema; use 'v1' or 'v2'")
        for name in ("idle_timeout", "active_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"MeterConfig.{name}: must be a whole number of seconds >= 1, got {value!r}")
        if self.chunk_size < 1:
            raise ConfigError(f"MeterConfig.chunk_size: must be at least 1, got {self.chunk_size}")
        if self.n_meters < 1:
            raise ConfigError(f"MeterConfig.n_meters: must be at least 1, got {self.n_meters}")
        if not 64 <= self.snaplen <= 262144:
            raise ConfigError(f"MeterConfig.snaplen: must be between 64 and 262144 bytes, got {self.snaplen}")
