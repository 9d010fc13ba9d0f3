"""NetFlow v5/v9 and IPFIX collection: flows from real exporters, as NF flow frames.

The pipeline, one way: :mod:`~flowsentinel.collector.transport` (the UDP
socket) -> :mod:`~flowsentinel.collector.decoder` (datagrams to records,
templates per exporter and observation domain) ->
:mod:`~flowsentinel.collector.records` (records to columns) ->
:mod:`~flowsentinel.collector.flows` (columns to NF flows, by the element
table in ``data/ipfix_elements.json``) -> :mod:`~flowsentinel.collector.stitch`
(one-way records into bidirectional flows) ->
:mod:`~flowsentinel.collector.batching` (micro-batches) ->
:mod:`~flowsentinel.collector.scoring` (the detection path). The
:class:`Collector` in :mod:`~flowsentinel.collector.service` runs it;
:mod:`~flowsentinel.collector.nfdump` reads nfcapd archives into the same
frames. See ``docs/collector.md``.
"""

from importlib import import_module

__all__ = ["Collector", "CollectorConfig", "Counters", "Decoder", "FrameStream", "UdpListener", "collect_frames",
           "parse_listen"]

# Where each public name lives; imported on first use, so that the command
# line can read the settings without importing numpy and pandas.
_HOMES = {"Collector": "service", "CollectorConfig": "config", "Counters": "counters", "Decoder": "decoder",
          "UdpListener": "transport", "parse_listen": "config", "FrameStream": "stream", "collect_frames": "stream"}


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
