"""One scorer for every producer of flows: HTTP requests, the live meter, a collector.

:meth:`Scorer.submit` is the one way in. A frame is queued with the model
that was current when it arrived; scoring threads take what has queued up
and score it in one network call (up to ``batch_flows`` flows, frames of
the same model only), so that many small requests cost about what one large
one does. Each frame's alerts go to the alert file and its verdicts to the
:class:`~concurrent.futures.Future` that ``submit`` returned.

Producers that run faster than scoring are held back: a source other than
``http`` may have at most ``backlog`` frames waiting, and ``submit`` blocks
past that (HTTP requests are bounded by the concurrency limit instead).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import FlowsentinelError, OutputError
from .model import LoadedModel, ModelHolder, Verdicts
from .validate import FlowColumns

__all__ = ["Scored", "Scorer"]

log = logging.getLogger(__name__)

_STOP = object()


@dataclass(frozen=True)
class Scored:
    """The verdicts of one submitted frame, and the EVE record of each alert (JSON text)."""

    model: LoadedModel
    verdicts: Verdicts
    eve: list[str]


@dataclass
class _Job:
    flows: FlowColumns
    model: LoadedModel
    source: str
    rows: np.ndarray | None
    #: host context's ``(flagged, classes)`` for these flows, computed by the producer in stream order
    context: tuple[np.ndarray, np.ndarray] | None = None
    future: Future = field(default_factory=Future)


class Scorer:
    """Scores submitted frames on worker threads.

    Args:
        holder: where the current model is taken from.
        metrics: a :class:`~flowsentinel.service.metrics.ServiceMetrics`.
        sink: an :class:`~flowsentinel.service.sinks.AlertFile`, or ``None``.
        workers: scoring threads.
        batch_flows: most flows in one network call.
        backlog: frames a producer (not ``http``) may have waiting.
    """

    def __init__(self, holder: ModelHolder, metrics, sink=None, *, workers: int = 1, batch_flows: int = 4096,
                 backlog: int = 64):
        self.holder = holder
        self.metrics = metrics
        self.sink = sink
        self.workers = workers
        self.batch_flows = batch_flows
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._backlog = threading.BoundedSemaphore(backlog)
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> "Scorer":
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"flowsentinel-scorer-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def submit(self, frame: pd.DataFrame | FlowColumns, source: str = "http", *, model: LoadedModel | None = None,
               rows: np.ndarray | None = None, context: tuple[np.ndarray, np.ndarray] | None = None) -> Future:
        """Queue a frame (or validated columns) for scoring; the future gives its :class:`Scored`.

        ``model`` defaults to the current one; ``rows`` numbers the flows in
        their EVE records (default 1, 2, ...); ``context``: host context's
        ``(flagged, classes)`` for the frame's flows
        (:meth:`flowsentinel.serving.context.HostContext.mark`), added to
        the model's alerts as ``detect`` adds them. Raises
        :class:`~flowsentinel.errors.FlowsentinelError` once the scorer is
        closed.
        """
        producer = source != "http"
        if producer:
            self._backlog.acquire()
        flows = frame if isinstance(frame, FlowColumns) else FlowColumns.from_frame(frame)
        job = _Job(flows, model or self.holder.current, source, rows, context)
        if producer:
            job.future.add_done_callback(lambda _f: self._backlog.release())
        with self._lock:
            if self._closed:
                if producer:
                    self._backlog.release()
                raise FlowsentinelError("the scorer is shutting down; the frame was not scored")
            self._queue.put(job)
        self.metrics.queue.inc()
        return job.future

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking frames, score those queued, stop the threads; ``False`` if ``timeout`` ran out first."""
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        drained = not any(t.is_alive() for t in self._threads)
        if not drained:
            log.error("scorer: frames still queued after %.0f s; they are not scored", timeout)
        return drained

    # ---- worker ------------------------------------------------------------
    def _work(self) -> None:
        carry = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job is _STOP:
                return
            batch, n = [job], len(job.flows)
            # Take whatever else is waiting, for the same model and with the
            # same columns, up to batch_flows; a windowed model needs each
            # frame's flows by themselves.
            while n < self.batch_flows and job.model.mode == "flow":
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if (nxt is _STOP or nxt.model is not job.model or nxt.flows.names != job.flows.names
                        or n + len(nxt.flows) > self.batch_flows):
                    carry = nxt
                    break
                batch.append(nxt)
                n += len(nxt.flows)
            self.metrics.queue.dec(len(batch))
            # A request that gave up (its deadline passed) cancelled its future.
            batch = [j for j in batch if j.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                self._score(batch)
            except Exception as exc:  # never let one batch stop the thread
                log.error("scoring thread: %s: %s", type(exc).__name__, exc, exc_info=True)
                self.metrics.failed("internal")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _score(self, batch: list[_Job]) -> None:
        model = batch[0].model
        t0 = time.perf_counter()
        try:
            frame = FlowColumns.concat([j.flows for j in batch]).to_frame()
            verdicts = _with_context(model.score(frame), batch)
            lines = self._alerts(batch, frame, verdicts)
        except Exception as exc:
            kind = "producer" if isinstance(exc, FlowsentinelError) else "internal"
            log.error("scoring a batch of %d frame(s) failed: %s: %s", len(batch), type(exc).__name__, exc,
                      exc_info=kind == "internal")
            for job in batch:
                self.metrics.failed(kind)
                job.future.set_exception(exc)
            return
        start = first_line = 0
        for job in batch:
            part = verdicts.slice(start, start + len(job.flows))
            start += len(job.flows)
            n_alerts = int(part.alerts.sum())
            job.future.set_result(Scored(job.model, part, lines[first_line:first_line + n_alerts]))
            first_line += n_alerts
            self.metrics.flows.labels(job.source).inc(len(job.flows))
        self.metrics.batch.observe(time.perf_counter() - t0)

    def _alerts(self, batch: list[_Job], frame: pd.DataFrame, verdicts: Verdicts) -> list[str]:
        """EVE records of the batch's alerts, in order: written to the sink, counted, returned."""
        if not verdicts.alerts.any():
            return []
        rows = np.concatenate([j.rows if j.rows is not None else np.arange(1, len(j.flows) + 1) for j in batch])
        text = batch[0].model.eve(frame, verdicts, rows)
        lines = text.splitlines()
        if self.sink is not None:
            try:
                self.sink.write(text)
                self.metrics.alert_records.inc(len(lines))
            except OutputError:
                # Logged by the sink when it starts failing; the verdicts still go back.
                self.metrics.failed("sink_write")
        for name, count in Counter(verdicts.classes[verdicts.alerts].tolist()).items():
            self.metrics.alerts.labels(str(name)).inc(count)
        return lines


def _with_context(verdicts: Verdicts, batch: list[_Job]) -> Verdicts:
    """The model's verdicts with the jobs' host context added: a flow the model let pass and host context
    flagged becomes an alert of host context's class."""
    if all(j.context is None for j in batch):
        return verdicts
    from ..serving.context import add_context

    flagged = np.concatenate([j.context[0] if j.context is not None else np.zeros(len(j.flows), bool)
                              for j in batch])
    named = np.concatenate([j.context[1] if j.context is not None else np.full(len(j.flows), "", dtype=object)
                            for j in batch])
    classes, alerts = add_context(verdicts.classes, verdicts.alerts, flagged, named)
    return Verdicts(verdicts.scores, classes, alerts)
