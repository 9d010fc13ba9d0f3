"""Packets to NF v1/v2 flows, from a capture file or a live interface.

nfstream does the packet work (libpcap capture, flow table with idle and
active timeouts, nDPI classification) in its own meter process; the
:class:`~flowsentinel.metering.plugins.NFv2Fields` plugin adds the fields
nfstream lacks. This module turns the flows nfstream yields into pandas
DataFrame chunks with the NF column names, so a capture of any size is
metered in bounded memory.

>>> import flowsentinel.metering as m
>>> m.flow_columns(m.MeterConfig(schema="v1"))[:4]
['IPV4_SRC_ADDR', 'L4_SRC_PORT', 'IPV4_DST_ADDR', 'L4_DST_PORT']
"""

from __future__ import annotations

import gzip
import io
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd

from flowsentinel.schema import TIME_COLUMNS, V1_FEATURES, V2_FEATURES, get_schema

from .capture import CaptureInfo, MeterError, inspect_capture
from .config import MeterConfig
from .plugins import ROW_COLUMNS, NFv2Fields

__all__ = [
    "MeterError",
    "MeterStats",
    "MeterRun",
    "flow_columns",
    "meter_capture",
    "meter_interface",
]

log = logging.getLogger(__name__)

L2_COLUMNS = ("IN_L2_BYTES", "OUT_L2_BYTES")
FLOW_ID_COLUMN = "FLOW_ID"
# Flows between two progress callbacks.
_PROGRESS_EVERY = 1000


def flow_columns(config: MeterConfig) -> list[str]:
    """The columns of a metered flow table, in output order."""
    features = V2_FEATURES if config.schema == "v2" else V1_FEATURES
    cols = ([FLOW_ID_COLUMN] if config.flow_id else []) + list(features) + list(TIME_COLUMNS)
    if config.link_layer_bytes:
        cols += list(L2_COLUMNS)
    return cols


@dataclass
class MeterStats:
    """Counters of one metering run; filled in as flows are produced.

    ``packets_seen``: packets the capture holds (file) or the meter received
    (live). ``packets_metered``: packets accounted in the flows produced.
    ``packets_ignored``: packets seen but in no flow (not IPv4/IPv6, e.g. ARP
    or STP, or too malformed to decode). ``packets_dropped``: live only, the
    interface's receive drops during the run (kernel counter).
    """

    source: str
    packets_seen: int = 0
    packets_metered: int = 0
    packets_ignored: int = 0
    packets_dropped: int = 0
    flows: int = 0
    truncated: bool = False
    elapsed_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"{self.source}: {self.flows} flows from {self.packets_metered} of {self.packets_seen} packets "
            f"({self.packets_ignored} not IP/undecodable, {self.packets_dropped} dropped) in {self.elapsed_s:.2f} s"
        )
        return text + (" [capture truncated]" if self.truncated else "")


def _frame(rows: list[tuple], config: MeterConfig, first_id: int) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows, columns=ROW_COLUMNS) if rows else pd.DataFrame(columns=list(ROW_COLUMNS))
    if config.flow_id:
        df.insert(0, FLOW_ID_COLUMN, range(first_id, first_id + len(df)))
    df = df[flow_columns(config)]
    schema = get_schema("v2")
    dtypes = {c: schema.dtype(c) for c in df.columns if c in V2_FEATURES}
    dtypes = {c: ("object" if t == "str" else t) for c, t in dtypes.items()}
    for c in df.columns:
        dtypes.setdefault(c, "int64")
    return df.astype(dtypes)


class MeterRun:
    """One metering run: iterate it for DataFrame chunks, read ``stats`` after.

    Created by :func:`meter_capture` or :func:`meter_interface`; the packets
    are read lazily, while iterating, and only one chunk of flows is held at a
    time. A run can be iterated once.
    """

    def __init__(
        self,
        source: str,
        config: MeterConfig,
        *,
        info: CaptureInfo | None = None,
        max_packets: int | None = None,
        max_seconds: float | None = None,
        progress: Callable[[MeterStats], None] | None = None,
    ) -> None:
        self.source = source
        self.config = config
        self.info = info
        self.max_packets = max_packets
        self.max_seconds = max_seconds
        self.progress = progress
        self.stats = MeterStats(source=source)
        if info is not None:
            self.stats.packets_seen = info.packets
            self.stats.truncated = info.truncated
        self._used = False

    @property
    def live(self) -> bool:
        return self.info is None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return self.chunks()

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Yield the flows as DataFrames of at most ``config.chunk_size`` rows."""
        if self._used:
            raise RuntimeError("a MeterRun can be iterated only once; call meter_capture() again")
        self._used = True
        from nfstream import (
            NFStreamer,  # heavy import (native engine), only when metering
        )

        cfg = self.config
        counter = None
        if self.live:
            counter = multiprocessing.get_context("fork").Value("Q", 0)
        plugin = NFv2Fields(packet_counter=counter)
        try:
            streamer = NFStreamer(
                source=self.source,
                decode_tunnels=cfg.decode_tunnels,
                bpf_filter=cfg.bpf_filter,
                promiscuous_mode=cfg.promiscuous,
                snapshot_length=cfg.snaplen,
                idle_timeout=cfg.idle_timeout,
                active_timeout=cfg.active_timeout,
                accounting_mode=1,  # IP-layer bytes, as nProbe counts IN_BYTES/OUT_BYTES
                udps=[plugin],
                n_dissections=20,
                statistical_analysis=False,
                splt_analysis=0,
                n_meters=cfg.n_meters,
            )
        except ValueError as exc:
            raise MeterError(f"{self.source}: cannot meter: {exc}") from None

        dropped_before = _rx_dropped(self.source) if self.live else None
        start = time.monotonic()
        watchdog = _Watchdog(counter, self.max_packets, self.max_seconds) if self.live else None
        rows: list[tuple] = []
        emitted = 0
        flows = iter(streamer)
        children_before = set(multiprocessing.active_children())
        try:
            if watchdog is not None:
                watchdog.start()
            for flow in _until_stopped(flows, watchdog, children_before):
                row = flow.udps.nf_row
                rows.append(row)
                self.stats.flows += 1
                self.stats.packets_metered += row[7] + row[9]
                if self.progress is not None and self.stats.flows % _PROGRESS_EVERY == 0:
                    self.stats.elapsed_s = time.monotonic() - start
                    self.progress(self.stats)
                if len(rows) >= cfg.chunk_size:
                    yield _frame(rows, cfg, emitted)
                    emitted += len(rows)
                    rows = []
        except ValueError as exc:  # nfstream reports capture errors as ValueError
            raise MeterError(f"{self.source}: capture failed: {exc}") from None
        finally:
            if watchdog is not None:
                watchdog.stop()
            self.stats.elapsed_s = time.monotonic() - start
        if rows or emitted == 0:
            yield _frame(rows, cfg, emitted)
        self._finish(counter, dropped_before)

    def _finish(self, counter, dropped_before: int | None) -> None:
        s = self.stats
        if self.live:
            s.packets_seen = int(counter.value) if counter is not None else s.packets_metered
            after = _rx_dropped(self.source)
            if dropped_before is not None and after is not None:
                s.packets_dropped = max(0, after - dropped_before)
        elif s.packets_metered > s.packets_seen:
            # The walk counts complete records only; libpcap may still deliver a packet out of a damaged
            # or cut record (found by fuzzing: an oversized record at the end of the file). Count what
            # was metered, and say so, rather than report more packets in flows than seen.
            log.warning("%s: %d packet(s) read from damaged records beyond the %d complete one(s)",
                        self.source, s.packets_metered - s.packets_seen, s.packets_seen)
            s.packets_seen = s.packets_metered
        s.packets_ignored = max(0, s.packets_seen - s.packets_metered)
        if self.progress is not None:
            self.progress(s)
        if s.packets_seen == 0:
            log.warning("%s: no packets to meter; the output has no flows", self.source)
        elif s.packets_ignored:
            log.warning(
                "%s: %d of %d packet(s) are in no flow (not IPv4/IPv6, e.g. ARP or STP, or undecodable)",
                self.source,
                s.packets_ignored,
                s.packets_seen,
            )
        log.info("%s", s.summary())

    def to_pandas(self) -> pd.DataFrame:
        """All flows in one DataFrame (for small captures and tests)."""
        return pd.concat(list(self.chunks()), ignore_index=True)

    def to_csv(self, path: str | os.PathLike) -> MeterStats:
        """Write every flow to a CSV file chunk by chunk; return the counters.

        A ``.gz`` suffix writes gzip. The output goes through
        :func:`flowsentinel.io.outputs.open_output`: a regular file is written
        under a temporary name and renamed at the end (a failed run leaves no
        half file under the name; an interrupted one leaves ``NAME.partial``),
        a device or FIFO is written through in place and never replaced, a
        symbolic link is refused.
        """
        from ..io.outputs import open_output

        with open_output(path, "wb") as raw:
            packed = gzip.GzipFile(fileobj=raw, mode="wb") if str(path).endswith(".gz") else None
            fh = io.TextIOWrapper(packed or raw, encoding="utf-8", newline="")
            first = True
            try:
                for chunk in self.chunks():
                    chunk.to_csv(fh, header=first, index=False)
                    first = False
            except BaseException:
                # Interrupted or failed: what was metered so far goes to NAME.partial, not lost in a buffer.
                try:
                    fh.flush()
                    if packed is not None:
                        packed.close()
                except (OSError, ValueError):
                    pass
                raise
            fh.flush()
            fh.detach()
            if packed is not None:
                packed.close()
        return self.stats


def meter_capture(
    path: str | os.PathLike,
    config: MeterConfig = MeterConfig(),
    *,
    progress: Callable[[MeterStats], None] | None = None,
) -> MeterRun:
    """Meter a pcap or pcapng file into NF flows.

    The file is checked at once (a :class:`MeterError` names the file and the
    problem: missing, empty, not a capture, unknown link type, corrupt); the
    packets are read while the returned :class:`MeterRun` is iterated.
    ``progress`` is called with the running counters every 1000 flows.
    """
    info = inspect_capture(path)
    return MeterRun(str(path), config, info=info, progress=progress)


def meter_interface(
    interface: str,
    config: MeterConfig = MeterConfig(),
    max_packets: int | None = None,
    max_seconds: float | None = None,
    *,
    progress: Callable[[MeterStats], None] | None = None,
) -> MeterRun:
    """Meter packets from a network interface (needs root or CAP_NET_RAW).

    Metering stops after ``max_packets`` packets or ``max_seconds`` seconds,
    whichever comes first, or on Ctrl-C (SIGINT), and must be iterated from the
    main thread when a limit is set (the stop is delivered as SIGINT). Flows
    still open at the stop are not reported: set ``idle_timeout`` below the
    run length to have short-lived flows closed in time.
    """
    if not Path("/sys/class/net", interface).exists() and interface != "any":
        raise MeterError(f"{interface}: no such network interface; list them with `ip link`")
    if (max_packets is not None or max_seconds is not None) and threading.current_thread() is not threading.main_thread():
        raise MeterError(f"{interface}: a live run with max_packets/max_seconds must be iterated in the main thread")
    return MeterRun(interface, config, max_packets=max_packets, max_seconds=max_seconds, progress=progress)


def _until_stopped(flows: Iterator, watchdog: "_Watchdog | None", children_before: set) -> Iterator:
    """Pass nfstream's flows through; end quietly when the watchdog stops the run.

    The watchdog's SIGINT lands either inside nfstream's generator (which then
    ends by itself, terminating its meter processes) or in the caller's code
    between two flows; in that case the generator is closed here and the meter
    processes it started are terminated.
    """
    try:
        yield from flows
    except KeyboardInterrupt:
        if watchdog is None or not watchdog.fired:
            raise
        flows.close()
        for child in set(multiprocessing.active_children()) - children_before:
            child.terminate()
            child.join(timeout=2.0)


def _rx_dropped(interface: str) -> int | None:
    try:
        return int(Path("/sys/class/net", interface, "statistics", "rx_dropped").read_text())
    except (OSError, ValueError):
        log.debug("%s: no receive-drop counter readable", interface)
        return None


class _Watchdog:
    """Stops a live run at a packet or time limit by sending SIGINT to the main thread.

    nfstream's streamer ends its iteration cleanly on KeyboardInterrupt
    (it terminates its meter processes); a signal is the one way to wake the
    streamer from its blocking wait for the next flow.
    """

    def __init__(self, counter, max_packets: int | None, max_seconds: float | None) -> None:
        self.counter = counter
        self.max_packets = max_packets
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fired = False

    def start(self) -> None:
        if self.max_packets is None and self.max_seconds is None:
            return
        self._thread = threading.Thread(target=self._run, name="meter-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        while not self._stop.wait(0.05):
            over_time = deadline is not None and time.monotonic() >= deadline
            over_count = self.max_packets is not None and self.counter.value >= self.max_packets
            if over_time or over_count:
                self.fired = True
                log.info("live metering limit reached (%s)", "time" if over_time else "packets")
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
