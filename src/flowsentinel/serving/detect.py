"""Scoring flow files with a saved model and writing per-flow verdicts.

Scoring is a pipeline of three stages, each on its own thread, joined by
bounded queues (:class:`StreamConfig`):

1. reading (the calling thread): the flow source, chunk by chunk
   (:class:`~flowsentinel.io.readers.FlowReader` for flow files, the meter
   for captures);
2. scoring: the feature transform and the network, on one chunk or on
   several at once (:func:`scoring_workers`), then, one chunk at a time in
   input order, scores, classes and host context (for a windowed model, the
   feature transform and its windows are a stage of their own before it);
3. writing: verdicts through :class:`~flowsentinel.io.alerts.AlertWriter`.

pyarrow, numpy and ONNX Runtime release the GIL for their heavy work, so the
stages overlap and the slowest one sets the pace. A chunk waits only in a
queue of ``queue_depth`` places, so memory is bounded by the queue depth
times the chunk size, whatever the size of the file. Each stage hands its
chunks on in input order, so verdicts come out in input order. An exception in any
stage stops the others and reaches the caller as it was raised; so does a
``KeyboardInterrupt`` or a :class:`~flowsentinel.errors.FlowsentinelError`
of the source (a flow file cut short), after the chunks already handed over
have been scored and written.

Windowed models stream too: :class:`WindowContext` carries each key's last
``window - 1`` flows (as model input) from one chunk to the next, so chunk
boundaries change no score; the carried state is bounded (see
:class:`StreamConfig`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import ConfigError, FlowsentinelError
from ..io.alerts import AlertWriter
from ..io.readers import FlowReader, ReadConfig
from ..models.engines import HEAVY_NETWORK_S
from ..schema import ATTACK_COLUMN
from .context import HostContext, HostContextConfig

__all__ = ["DetectSummary", "StreamConfig", "WindowContext", "detect_frames", "detect_file"]

log = logging.getLogger(__name__)
LINE = "_line"
# How often a waiting stage looks whether the pipeline was stopped, s.
_POLL_S = 0.05


@dataclass(frozen=True)
class StreamConfig:
    """How :func:`detect_file` and :func:`detect_frames` stream flows.

    Attributes:
        chunk_rows: rows per chunk read from a flow file (default 50,000:
            on the shared 2-core machine 1M flows through the default network
            went at about 222,000 flows/s in chunks of 50,000 and of 25,000,
            against 174,000-198,000 in chunks of 100,000, measured in one run;
            a smaller chunk's columns stay in the CPU caches between the stages).
        queue_depth: chunks that may wait between two stages (default 1).
            At most ``2 * queue_depth + 2 + scoring_workers`` chunks are
            held at once (one more of each for a windowed model): the queued
            ones, one in reading and writing, one in each scoring worker.
        concurrent: run the stages on their own threads (default on); off,
            each chunk is read, scored and written before the next is read.
        scoring_workers: chunks the network scores at once, each on a
            thread of its own (``None``, the default: chosen by
            :func:`scoring_workers`). Each adds one chunk to those held.
        window_keys: windowed models: the most keys (hosts) whose last
            ``window - 1`` flows are carried from one chunk to the next
            (default 200,000; with the default window of 8 and about 70
            model inputs that is at most about 400 MB, and far less for the
            usual few thousand hosts). Past it, the keys seen longest ago
            are dropped first.
        window_idle_chunks: windowed models: a key absent from this many
            consecutive chunks is dropped (default 100: ten million flows at
            the default chunk size). A dropped key's next flow starts a new
            window, padded as a host's first flows are: the one place where
            a streamed score can differ from scoring the whole file at once.
    """

    chunk_rows: int = 50_000
    queue_depth: int = 1
    concurrent: bool = True
    scoring_workers: int | None = None
    window_keys: int = 200_000
    window_idle_chunks: int = 100

    def __post_init__(self):
        for name in ("chunk_rows", "queue_depth", "window_keys", "window_idle_chunks"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"stream {name} must be at least 1, got {getattr(self, name)}")
        if self.scoring_workers is not None and int(self.scoring_workers) < 1:
            raise ConfigError(f"scoring workers must be at least 1, got {self.scoring_workers}")


@dataclass
class DetectSummary:
    n_flows: int = 0
    n_alerts: int = 0
    by_class: dict[str, int] = field(default_factory=dict)
    n_rejected: int = 0
    rejects_path: str | None = None
    seconds: float = 0.0
    #: alerts that host context added (flows the model alone let pass)
    n_host_context: int = 0

    def text(self) -> str:
        rate = self.n_flows / self.seconds if self.seconds else 0.0
        classes = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.by_class.items(), key=lambda kv: -kv[1]))
        extra = f"; {self.n_host_context:,} from host context" if self.n_host_context else ""
        out = (f"{self.n_flows:,} flows scored, {self.n_alerts:,} alerts ({classes or 'none'}{extra}) in "
               f"{self.seconds:.1f} s ({rate:,.0f} flows/s)")
        if self.n_rejected:
            out += f"; {self.n_rejected:,} bad rows set aside in {self.rejects_path}"
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"n_flows": self.n_flows, "n_alerts": self.n_alerts, "alerts_by_class": self.by_class,
                "n_rejected": self.n_rejected, "rejects_path": self.rejects_path, "seconds": self.seconds,
                "n_host_context": self.n_host_context}


def model_identity(detector) -> tuple[str, str]:
    """The model's short name, and a version: flowsentinel's and the model's creation time."""
    from ..models.registry import short_name

    manifest = getattr(detector, "manifest_", {}) or {}
    package = manifest.get("versions", {}).get("flowsentinel")
    if package is None:
        from .. import __version__ as package
    version = f"{package}/{manifest.get('created', 'unsaved')}"
    return short_name(detector), version


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


def scoring_workers(detector, stream: StreamConfig) -> int:
    """Chunks the network scores at once: ``stream.scoring_workers``, else chosen for the network and the cores.

    Chosen: two on a machine with two or more cores where the network runs
    through ONNX Runtime (whose sessions take concurrent calls) and takes
    more than :data:`~flowsentinel.models.engines.HEAVY_NETWORK_S` a flow
    (timed on zeros when its session was made); else one. On the shared
    2-core machine the ``configs/paper.toml`` network (about 17 us a flow)
    went from 46,000-49,000 to 80,500-81,500 flows/s end to end with two;
    the default networks (about 1.3 us a flow) gained nothing and held
    90-120 MB more (``docs/performance.md``).
    """
    if stream.scoring_workers is not None:
        workers = int(stream.scoring_workers)
    else:
        workers = 1
        engine = getattr(detector, "engine_", None)
        if getattr(engine, "name", None) == "onnx" and _cores() >= 2:
            cost = engine.seconds_per_row()
            if cost is not None and cost > HEAVY_NETWORK_S:
                workers = 2
            log.debug("the network takes %s a flow: %d scoring worker(s)",
                      "?" if cost is None else f"{cost * 1e6:.1f} us", workers)
    if workers > 1 and hasattr(type(detector), "engine"):
        detector.engine  # made now, before the workers share it  # noqa: B018
    return workers


def is_windowed(detector) -> bool:
    return getattr(detector, "mode", "flow") == "window"


# ---- windows across chunks -----------------------------------------------------------------


class WindowContext:
    """Each key's last ``window - 1`` flows, as model input, carried from one chunk to the next.

    :meth:`source` gives the windows of a chunk's flows with the carried
    flows of the same keys before them, so that a flow's window is the one it
    would have in the whole file: the carried flows are the key's latest,
    and the chunk's come after them (table order, or the model's time
    column, as :func:`~flowsentinel.features.make_windows` orders them). A
    file whose flows of one key are not in time order across a chunk
    boundary sees only the carried context. Flows without a key have no
    context and are not carried. The state is bounded by
    ``config.window_keys`` and ``config.window_idle_chunks``.
    """

    def __init__(self, detector, config: StreamConfig = StreamConfig()):
        self.detector = detector
        self.keep = int(detector.window) - 1
        self.key = detector.window_key
        self.config = config
        self.n_inputs = len(detector.features_.output_names_)
        self.chunk = 0
        self._columns: dict[str, np.ndarray] | None = None  # key and time columns of the carried rows
        self._rows = np.zeros((0, self.n_inputs), np.float32)
        self._seen = np.zeros(0, np.int64)  # the chunk in which each carried row's key was last seen

    @property
    def n_keys(self) -> int:
        return 0 if self._columns is None else int(pd.unique(self._columns[self.key]).size)

    @property
    def n_rows(self) -> int:
        return len(self._rows)

    def _order_columns(self, frame: pd.DataFrame) -> list[str]:
        """The key, and the time column that orders the model's windows where it has one."""
        time_column = getattr(self.detector, "time_column", None) or (
            "FLOW_START_MILLISECONDS" if "FLOW_START_MILLISECONDS" in frame.columns else None)
        return [self.key] + ([time_column] if time_column in frame.columns and time_column != self.key else [])

    def source(self, frame: pd.DataFrame, matrix: np.ndarray):
        """The windows of ``frame``'s flows (``matrix``: their model input), and carry their context on."""
        self.chunk += 1
        names = self._order_columns(frame)
        new = {c: frame[c].to_numpy() for c in names}
        if self._columns is None or self._columns.keys() != new.keys() or self.keep == 0:
            self._columns, self._rows, self._seen = {c: v[:0] for c, v in new.items()}, self._rows[:0], self._seen[:0]
        carried_keys = self._columns[self.key]
        match = pd.Series(carried_keys, dtype=object).isin(pd.unique(new[self.key])).to_numpy() \
            if len(carried_keys) else np.zeros(0, bool)
        n_ctx = int(match.sum())
        columns = {c: _concat(self._columns[c][match], new[c]) for c in names}
        rows = np.concatenate([self._rows[match], np.asarray(matrix, np.float32)]) if n_ctx else matrix
        src = self.detector.model_input(pd.DataFrame(columns, copy=False), rows)
        src.windows = src.windows[n_ctx:]
        self._carry(columns, rows, ~match)
        return src

    def _carry(self, columns: dict[str, np.ndarray], rows: np.ndarray, unmatched: np.ndarray) -> None:
        """The new state: the carried rows of keys absent from this chunk, and each present key's latest rows."""
        if self.keep == 0:
            return
        keys = pd.Series(columns[self.key], dtype=object)
        missing = (keys.isna() | (keys.astype(str).str.strip() == "")).to_numpy()
        idx = np.flatnonzero(~missing)
        codes = pd.factorize(keys.to_numpy()[idx])[0]
        times = [np.asarray(columns[c])[idx] for c in list(columns)[1:]]
        # make_windows's order: (key, time, table position); keep each key's last rows.
        perm = np.lexsort((idx, *times, codes))
        sorted_codes = codes[perm]
        ends = np.r_[np.flatnonzero(np.diff(sorted_codes)) + 1, len(sorted_codes)]
        group_end = np.repeat(ends, np.diff(np.r_[0, ends]))
        latest = idx[perm[group_end - np.arange(len(perm)) - 1 < self.keep]]
        seen = np.r_[self._seen[unmatched], np.full(len(latest), self.chunk, np.int64)]
        state_columns = {c: _concat(self._columns[c][unmatched], np.asarray(v)[latest]) for c, v in columns.items()}
        state_rows = np.concatenate([self._rows[unmatched], rows[latest]])
        keep = self.chunk - seen < self.config.window_idle_chunks
        key_codes, key_uniques = pd.factorize(pd.Series(state_columns[self.key], dtype=object))
        if len(key_uniques) > self.config.window_keys:
            last_seen = np.zeros(len(key_uniques), np.int64)
            np.maximum.at(last_seen, key_codes, seen)
            recent = np.argsort(-last_seen, kind="stable")[: self.config.window_keys]
            allowed = np.zeros(len(key_uniques), bool)
            allowed[recent] = True
            keep &= allowed[key_codes]
        if not keep.all():
            log.debug("window context: %d carried rows dropped (idle or past %d keys)", int((~keep).sum()),
                      self.config.window_keys)
        self._columns = {c: v[keep] for c, v in state_columns.items()}
        self._rows, self._seen = state_rows[keep], seen[keep]


def _concat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not len(a):
        return np.asarray(b)
    if a.dtype != b.dtype:
        return np.concatenate([a.astype(object), np.asarray(b, dtype=object)])
    return np.concatenate([a, b])


# ---- the pipeline --------------------------------------------------------------------------


class _Stopped(Exception):
    """The pipeline was stopped (by an error elsewhere or by the caller) while a stage waited."""


_END = object()


@dataclass(frozen=True)
class _Stage:
    """One stage of a :class:`_Pipeline`: ``work`` on ``workers`` threads, then ``then`` in input order.

    With more than one worker, ``work`` must not depend on the order of the
    items (it runs on several at once); ``then`` runs on each result in the
    order the items came in, one at a time, and what it returns goes on.
    """

    work: Callable[[Any], Any]
    then: Callable[[Any], Any] | None = None
    workers: int = 1

    def __post_init__(self):
        if int(self.workers) < 1:
            raise ConfigError(f"a pipeline stage needs at least one worker, got {self.workers}")


class _Pipeline:
    """Items put by the calling thread go through ``stages``, each on its own threads, over bounded queues.

    Items keep their order through every stage, whatever its number of
    workers. The first error of any stage stops every stage; :meth:`put` and
    :meth:`finish` raise it in the caller. Leaving the ``with`` block on an
    exception stops the stages and waits for them (each finishes the item
    it holds) before the exception goes on.
    """

    def __init__(self, stages: list, depth: int):
        self.stages = [s if isinstance(s, _Stage) else _Stage(s) for s in stages]
        self.queues = [queue.Queue(maxsize=depth) for _ in self.stages]
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.busy = [0.0] * len(self.stages)  # seconds each stage's workers spent working, not waiting
        self._lock = threading.Lock()
        self._turns = [threading.Condition() for _ in self.stages]
        self._next = [0] * len(self.stages)  # the sequence number each stage hands on next
        self._done = [0] * len(self.stages)  # workers of each stage that have seen the end
        self._seq = 0
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True,
                             name=f"detect-{i}-{getattr(s.work, '__name__', 'stage')}" + (f"-{w}" if s.workers > 1 else ""))
            for i, s in enumerate(self.stages) for w in range(s.workers)
        ]

    def __enter__(self) -> "_Pipeline":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # An interrupt (SIGINT, or SIGTERM turned into SystemExit) arrives while reading: the chunks
        # already handed over (at most the queues' depth plus one per stage) are scored and written
        # first, so the summary counts every flow that reached the output. So does a user error of
        # the source (a flow file cut short raises FlowReadError after yielding every row before the
        # cut: the probe's half sample lost the verdicts of all 111,629 rows it had read). A second
        # interrupt cuts this short; any other exception (a bug) stops the stages at once.
        drain = (KeyboardInterrupt, SystemExit, FlowsentinelError)
        if exc_type is not None and issubclass(exc_type, drain) and self.error is None:
            try:
                self._put(self.queues[0], _END)
            except _Stopped:
                pass
            else:
                try:
                    self._join()
                    return
                except BaseException:
                    pass
        self.stop.set()
        self._join()

    def put(self, item) -> None:
        try:
            self._put(self.queues[0], (self._seq, item))
        except _Stopped:
            self._raise()
        self._seq += 1

    def finish(self) -> None:
        """No more items: wait for the stages to handle what they have, then raise a stage's error if any."""
        try:
            self._put(self.queues[0], _END)
        except _Stopped:
            pass
        self._join()
        if self.error is not None:
            raise self.error

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error
        raise _Stopped("the scoring pipeline stopped")  # pragma: no cover - only after stop without an error

    def _join(self) -> None:
        for t in self.threads:
            while t.is_alive():
                t.join(_POLL_S)

    def _put(self, q: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _get(self, q: queue.Queue):
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _run(self, i: int) -> None:
        stage = self.stages[i]
        inbox = self.queues[i]
        outbox = self.queues[i + 1] if i + 1 < len(self.queues) else None
        turn = self._turns[i]
        try:
            while True:
                item = self._get(inbox)
                if item is _END:
                    self._end(i, inbox, outbox)
                    return
                seq, value = item
                t0 = time.perf_counter()
                result = stage.work(value)
                busy = time.perf_counter() - t0
                with turn:  # hand results on in input order
                    while self._next[i] != seq:
                        if self.stop.is_set():
                            raise _Stopped
                        turn.wait(_POLL_S)
                    if stage.then is not None:
                        t0 = time.perf_counter()
                        result = stage.then(result)
                        busy += time.perf_counter() - t0
                    if outbox is not None:
                        self._put(outbox, (seq, result))
                    self._next[i] += 1
                    turn.notify_all()
                with self._lock:
                    self.busy[i] += busy
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it was raised
            with self._lock:
                if self.error is None:
                    self.error = exc
            self.stop.set()

    def _end(self, i: int, inbox: queue.Queue, outbox: queue.Queue | None) -> None:
        """The end reached a worker of stage ``i``: the last of its workers to stop hands it on."""
        with self._lock:
            self._done[i] += 1
            last = self._done[i] == self.stages[i].workers
        if not last:
            self._put(inbox, _END)  # for the stage's other workers, after every item before it
        elif outbox is not None:
            # A worker takes the end only after handing on the item it held: every item is out.
            self._put(outbox, _END)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(progress: bool, total: int | None):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="scoring", unit="flow", unit_scale=True, leave=False, disable=None)


def detect_frames(detector, frames: Iterable[pd.DataFrame], writer: AlertWriter, *, where: str = "flows",
                  progress: bool = True, total: int | None = None, stream: StreamConfig = StreamConfig(),
                  summary: DetectSummary | None = None,
                  host_context: HostContext | HostContextConfig | None = HostContextConfig()) -> DetectSummary:
    """Score each frame and write its verdicts; frames may carry a ``_line`` column.

    Frames are taken from ``frames`` in the calling thread, scored and
    written on worker threads (see the module's description); a windowed
    model's windows run on across frames (:class:`WindowContext`).
    ``summary``, when given, is filled in as frames are written, so that a
    caller interrupted part-way can say what was done. ``host_context``
    (:mod:`flowsentinel.serving.context`) adds the alerts of scans and floods
    seen across flows, where the flows carry addresses and times; a
    :class:`HostContext` given here keeps its counts from an earlier call
    (the collector's batches), ``None`` turns it off.
    """
    summary = DetectSummary() if summary is None else summary
    counts: Counter[str] = Counter()
    context = WindowContext(detector, stream) if is_windowed(detector) else None
    hosts = HostContext(host_context) if isinstance(host_context, HostContextConfig) else host_context
    if hosts is not None and not hosts.config.enabled:
        hosts = None
    offset = 0
    t0 = time.perf_counter()

    def windows(frame: pd.DataFrame):
        detector.check_columns(frame.columns, where)
        return frame, context.source(frame, detector.features_.transform(frame, where))

    def network(item):
        # The same for any chunk, whatever came before it: runs on several chunks at once.
        if context is not None:
            frame, source = item
            return frame, detector.probabilities(source)
        detector.check_columns(item.columns, where)
        return item, detector.predict_proba(item)

    def verdicts(item):
        # Host context and row numbers run on across chunks: one chunk at a time, in input order.
        nonlocal offset
        frame, proba = item
        scores = detector.scores_from_proba(proba)
        classes = detector.labels_from_proba(proba)
        alerts = scores >= detector.threshold_
        if hosts is not None:
            n_before = hosts.n_added
            classes, alerts, notes = hosts.apply(frame, classes, alerts)
            summary.n_host_context += hosts.n_added - n_before
            if notes is not None:
                frame = frame.assign(**notes)
        rows = frame[LINE].to_numpy() if LINE in frame.columns else np.arange(offset, offset + len(frame)) + 1
        offset += len(frame)
        truth = frame[ATTACK_COLUMN].to_numpy() if ATTACK_COLUMN in frame.columns else None
        return frame, scores, classes, alerts, rows, truth

    bar = _progress_bar(progress, total)

    def write(scored) -> None:
        frame, _, classes, alerts = scored[:4]
        writer.write(*scored)
        counts.update(classes[alerts].tolist())
        summary.by_class = dict(counts)
        summary.n_flows += len(frame)
        summary.n_alerts += int(alerts.sum())
        summary.seconds = time.perf_counter() - t0
        bar.update(len(frame))

    try:
        single = isinstance(frames, (list, tuple)) and len(frames) <= 1
        if stream.concurrent and not single:
            # A windowed model's windows (pandas work across chunks, mostly under the GIL) get a stage of
            # their own: 1M flows took 4.4 s instead of 5.0 on the 2-core machine. Per-flow models
            # gained nothing from a separate feature stage and held 90 MB more.
            workers = scoring_workers(detector, stream)
            stages = [_Stage(network, verdicts, workers), write]
            if context is not None:
                stages.insert(0, windows)
            with _Pipeline(stages, stream.queue_depth) as pipe:
                reading = 0.0
                t_read = time.perf_counter()
                for frame in frames:
                    reading += time.perf_counter() - t_read
                    if len(frame):
                        pipe.put(frame)
                    t_read = time.perf_counter()
                pipe.finish()
            names = ["windows"] * (context is not None) + ["scoring", "writing"]
            log.debug("detect stages, seconds busy: reading %.1f, %s (%.1f in all)", reading,
                      ", ".join(f"{n} {b:.1f}" for n, b in zip(names, pipe.busy)), time.perf_counter() - t0)
        else:
            for frame in frames:
                if len(frame):
                    write(verdicts(network(windows(frame) if context is not None else frame)))
    finally:
        bar.close()
    writer.finish()
    summary.by_class = dict(counts)
    summary.seconds = time.perf_counter() - t0
    return summary


def detect_file(detector, path: str | Path, out: IO[str], fmt: str = "jsonl", *, only_alerts: bool = False,
                chunk_rows: int | None = None, progress: bool = True, rejects_dir: Path | None = None,
                stream: StreamConfig = StreamConfig(), summary: DetectSummary | None = None,
                host_context: HostContextConfig | None = HostContextConfig(), **writer_options) -> DetectSummary:
    """Score every valid flow of a flow file; bad rows go to a rejects file.

    The file is streamed (:class:`StreamConfig`; ``chunk_rows`` overrides
    its chunk size) for per-flow and windowed models alike.
    ``writer_options`` go to :class:`~flowsentinel.io.alerts.AlertWriter`
    (sensor, suppression, explainer...); ``summary`` is filled in as in
    :func:`detect_frames`.

    ``flowsentinel detect`` also calls
    :func:`~flowsentinel.serving.allocator.keep_freed_memory` first, which
    saves it about a second of kernel time per million flows; it changes
    the whole process's allocator, so a program that scores large files
    through this function and owns its process calls it itself.
    """
    rows = chunk_rows or stream.chunk_rows
    reader = FlowReader(path, ReadConfig(require_labels=False, chunk_rows=rows, line_column=LINE,
                                         rejects_dir=rejects_dir))
    detector.check_columns(reader.columns, str(path))
    name, version = model_identity(detector)
    writer = AlertWriter(out, fmt, model_name=name, model_version=version, only_alerts=only_alerts,
                         threshold=detector.threshold_, **writer_options)
    summary = DetectSummary() if summary is None else summary
    try:
        detect_frames(detector, reader, writer, where=str(path), progress=progress, stream=stream, summary=summary,
                      host_context=host_context)
    finally:
        summary.n_rejected = reader.report.n_rejected
        summary.rejects_path = reader.report.rejects_path
    return summary
