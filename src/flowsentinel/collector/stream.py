"""The collector as a stream of NF flow frames, for a process that scores them itself (``serve --collect``).

:func:`collect_frames` listens on ``HOST:PORT`` and yields the flow frames
the :class:`~flowsentinel.collector.service.Collector` makes, micro-batch by
micro-batch; :meth:`FrameStream.close` (from any thread) stops it, after the
pending batch is drained and handed on.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator

import pandas as pd

from .config import CollectorConfig
from .service import Collector
from .transport import UdpListener

__all__ = ["FrameStream", "collect_frames"]

log = logging.getLogger(__name__)

# Frames waiting for the consumer; a slow consumer slows the collector, whose
# socket buffer (and the kernel's drop counter) then takes the excess.
_QUEUE_FRAMES = 64


class FrameStream:
    """Iterate for frames; ``close()`` ends the iteration once the collector has drained."""

    def __init__(self, host: str, port: int, config: CollectorConfig = CollectorConfig()):
        self.config = config
        self.listener = UdpListener(host, port, receive_buffer=config.receive_buffer)
        self.address = self.listener.address
        self._stop = threading.Event()
        self._frames: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
        self.collector = Collector(config, sink=self._hand_on)

    def _hand_on(self, frames: list[pd.DataFrame]) -> tuple[int, int]:
        for frame in frames:
            self._frames.put(frame)
        return sum(len(f) for f in frames), 0

    def _run(self) -> None:
        try:
            self.collector.run(self.listener, stop=self._stop.is_set)
        except Exception:
            log.exception("collector on %s:%d stopped", *self.address[:2])
        finally:
            self.listener.close()
            log.info("collector: %s", self.collector.counters.line())

    def __iter__(self) -> Iterator[pd.DataFrame]:
        thread = threading.Thread(target=self._run, name="flowsentinel-collector", daemon=True)
        thread.start()
        while thread.is_alive() or not self._frames.empty():
            try:
                yield self._frames.get(timeout=0.2)
            except queue.Empty:
                continue

    def close(self) -> None:
        self._stop.set()


def collect_frames(host: str, port: int, config: CollectorConfig = CollectorConfig()) -> FrameStream:
    """A :class:`FrameStream` listening on ``host:port``."""
    return FrameStream(host, port, config)
