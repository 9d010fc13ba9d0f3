"""The collector: datagrams in, NF flow frames out, in micro-batches.

:class:`Collector` ties the parts together, one way: the
:class:`~flowsentinel.collector.decoder.Decoder` turns datagrams into
chunks; at each micro-batch :func:`~flowsentinel.collector.records.records_from_chunks`
makes them columns, :func:`~flowsentinel.collector.flows.normalize` NF
flows, the :class:`~flowsentinel.collector.stitch.Stitcher` pairs one-way
records, and the ``sink`` (a :class:`~flowsentinel.collector.scoring.Scorer`,
or anything that takes a list of frames) scores and writes them.

The first time a domain sends a data template, :meth:`Collector.check_template`
works out the NF columns its flows will have and, when a model is given,
refuses one that lacks a column the model needs (``check`` raises
:class:`~flowsentinel.errors.MissingColumnsError`).

:meth:`Collector.run` is the receive loop over a
:class:`~flowsentinel.collector.transport.UdpListener`; it stops when
``stop()`` is true, after ``max_packets`` datagrams, ``max_seconds``
seconds, or ``idle_exit_s`` seconds without a datagram, and drains the
pending batch (records still waiting for their partner included) before it
returns.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from .batching import MicroBatcher
from .config import CollectorConfig
from .counters import Counters
from .decoder import Decoder
from .flows import normalize, template_flow_columns, to_frames
from .records import records_from_chunks
from .stitch import Stitcher
from .templates import Domain, Template

__all__ = ["Collector", "FrameSink"]

log = logging.getLogger(__name__)

#: Scores (or keeps) a list of flow frames; returns (flows scored, alerts).
FrameSink = Callable[[list[pd.DataFrame]], "tuple[int, int]"]
# Longest the loop sleeps in one select(), so that a stop request is seen soon.
_POLL_S = 0.2


class Collector:
    """Decode, stitch, batch and hand NF flow frames to ``sink``.

    ``check(columns, where)`` (optional) raises when a template's flows lack
    a column the model needs; ``clock`` is the monotonic clock (seconds).
    """

    def __init__(self, config: CollectorConfig = CollectorConfig(), sink: FrameSink | None = None, *,
                 check: Callable[[list[str], str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.sink = sink
        self.check = check
        self.clock = clock
        self.counters = Counters()
        self.decoder = Decoder(config, self.counters, on_template=self.check_template)
        self.stitcher = Stitcher(config.stitch_wait_s, config.stitch_gap_ms)
        self.batcher = MicroBatcher(config.batch_size, config.batch_wait_s)
        #: NF columns of each checked template, by (exporter, version, domain id, template id).
        self.template_columns: dict[tuple[str, int, int, int], list[str]] = {}

    # ---- templates -------------------------------------------------------
    def check_template(self, domain: Domain, template: Template) -> None:
        columns = template_flow_columns(domain, template)
        key = (domain.exporter, domain.version, domain.domain_id, template.template_id)
        where = f"exporter {domain.label} template {template.template_id}"
        if self.template_columns.get(key) != columns:
            log.info("%s: flows with %d NF columns: %s", where, len(columns), ", ".join(columns))
        self.template_columns[key] = columns
        if self.check is not None:
            self.check(columns, where)

    # ---- one datagram, one batch -----------------------------------------
    def feed(self, data: bytes, exporter: str, now: float) -> None:
        before = self.decoder.pending_records
        self.decoder.feed(data, exporter, now)
        self.batcher.add(self.decoder.pending_records - before, now)

    def deadline(self) -> float | None:
        """When the next batch is due (monotonic s): the batch clock or the first stitch wait to end."""
        times = [t for t in (self.batcher.deadline(), self.stitcher.next_deadline()) if t is not None]
        return min(times) if times else None

    def due(self, now: float) -> bool:
        deadline = self.stitcher.next_deadline()
        return self.batcher.due(now) or (deadline is not None and now >= deadline)

    def frames(self, now: float, *, drain: bool = False) -> tuple[list[pd.DataFrame], list[np.ndarray]]:
        """The flows ready at ``now`` as frames, with the arrival time of each flow's first record."""
        c = self.counters
        self.batcher.reset()
        one_way, ready = [], []
        for batch in records_from_chunks(self.decoder.take(), apply_sampling=self.config.apply_sampling):
            cols, is_one_way = normalize(batch)
            if is_one_way:
                one_way.append(cols)
            else:
                ready.append(cols)
                c.flows_biflow += len(batch)
        stitched, stats = self.stitcher.push(one_way, now, drain=drain)
        c.flows_stitched += stats.stitched
        c.flows_one_way += stats.one_way
        made = to_frames(ready + stitched)
        frames, arrivals = [f for f, _ in made], [a for _, a in made]
        c.flows += sum(len(f) for f in frames)
        return frames, arrivals

    def flush(self, now: float, *, drain: bool = False) -> None:
        """Score the flows ready at ``now`` (all of them with ``drain``)."""
        frames, arrivals = self.frames(now, drain=drain)
        if not frames:
            return
        c = self.counters
        c.batches += 1
        if self.sink is not None:
            scored, alerts = self.sink(frames)
            c.flows_scored += scored
            c.alerts += alerts
        c.add_latencies(self.clock() - np.concatenate(arrivals))

    # ---- the receive loop ------------------------------------------------
    def run(self, listener, *, stop: Callable[[], bool] = lambda: False, max_packets: int | None = None,
            max_seconds: float | None = None, idle_exit_s: float | None = None) -> Counters:
        """Receive, decode and score until told to stop; drains the pending batch; returns the counters."""
        cfg, c, clock = self.config, self.counters, self.clock
        start = last_packet = clock()
        next_stats = start + cfg.stats_every_s if cfg.stats_every_s else None
        next_expiry = start + 1.0
        while not stop():
            now = clock()
            if max_seconds is not None and now - start >= max_seconds:
                break
            if max_packets is not None and c.packets >= max_packets:
                break
            deadline = self.deadline()
            timeout = _POLL_S if deadline is None else min(_POLL_S, max(0.0, deadline - now))
            if max_seconds is not None:
                timeout = min(timeout, max(0.0, start + max_seconds - now))
            limit = cfg.max_packets_per_read if max_packets is None else min(cfg.max_packets_per_read,
                                                                             max_packets - c.packets)
            got = listener.receive(timeout, limit)
            now = clock()
            if got:
                last_packet = now
                for data, exporter in got:
                    self.feed(data, exporter, now)
            elif idle_exit_s is not None and now - last_packet >= idle_exit_s:
                # Only an empty read counts as idle: a long scoring pass must not end the run.
                break
            if self.due(now):
                self.flush(now)
            if now >= next_expiry:
                self.decoder.expire(now)
                next_expiry = now + 1.0
            if next_stats is not None and now >= next_stats:
                c.kernel_drops = listener.drops()
                log.info("collector: %s", c.line())
                next_stats = now + cfg.stats_every_s
        self.flush(clock(), drain=True)
        c.kernel_drops = listener.drops()
        return c

    def collect(self, datagrams: Iterable[tuple[bytes, str]], *, drain: bool = True) -> list[pd.DataFrame]:
        """Decode datagrams that were already received (a recording, a test) into flow frames."""
        now = self.clock()
        for data, exporter in datagrams:
            self.feed(data, exporter, now)
        frames, _ = self.frames(self.clock(), drain=drain)
        return frames
