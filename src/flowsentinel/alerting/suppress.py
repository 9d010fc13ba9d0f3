"""No alert storms: repeats of an alert within a window fold into one follow-up record.

As Zeek's notice framework suppresses a notice per identifier for an
interval, :class:`Suppressor` lets the first alert of a source (or of a
source and class) out at once and opens a window of ``window_s`` seconds of
flow time. Further alerts of the same key inside the window are not sent:
they are counted, with their first and last times and their distinct
destinations and destination ports, into one :class:`Aggregate` that is
reported when the window closes (a flow of a later time arrives) or when
the input ends. The next alert after the window goes out at once and opens
a new window.

A thousand-port scan is then two records: the first probe's alert, and one
follow-up saying 999 more probes to 999 ports were folded in.

A flood from many sources to one victim (host context's fan-in alerts) would
be one window per source; alerts marked ``by_destination`` fold by their
destination instead, so a reflection flood from 4,000 reflectors is the
first reply's alert and one follow-up counting the other sources.

>>> s = Suppressor(SuppressConfig(window_s=60))
>>> t = np.array([0.0, 1000.0, 2000.0, 90_000.0])
>>> s.admit(t, np.array(["a"] * 4, dtype=object), np.array(["Scan"] * 4, dtype=object),
...         np.array(["h"] * 4, dtype=object), np.array([1, 2, 3, 4])).tolist()
[True, False, False, True]
>>> [(a.count, sorted(a.dest_ports)) for a in s.closed]
[(2, [2, 3])]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..choices import SUPPRESS_KEYS, check_choice
from ..errors import ConfigError

__all__ = ["SuppressConfig", "Suppressor", "Aggregate", "SUPPRESS_KEYS"]


@dataclass(frozen=True)
class SuppressConfig:
    """Alert aggregation settings.

    Attributes:
        window_s: seconds of flow time a first alert suppresses its repeats
            for (default 60; Zeek suppresses notices for an hour, but flow
            alerts come in far faster and a minute already folds a scan).
        key: ``source_class`` (default: repeats of one class from one source)
            or ``source`` (every class from one source folds together).
        max_distinct: destinations and ports listed per follow-up at most;
            beyond it the follow-up says ``truncated`` and counts no further
            distinct values (memory stays bounded during a sweep).
        enabled: ``False`` writes every alert as it comes.
    """

    window_s: float = 60.0
    key: str = "source_class"
    max_distinct: int = 1000
    enabled: bool = True

    def __post_init__(self):
        check_choice("suppress.key", self.key, SUPPRESS_KEYS)
        if not self.window_s > 0:
            raise ConfigError(f"suppress window must be a positive number of seconds, got {self.window_s!r}")
        if self.max_distinct < 1:
            raise ConfigError(f"suppress max_distinct must be at least 1, got {self.max_distinct!r}")


@dataclass
class Aggregate:
    """The alerts one window folded in (not counting the first, which was sent on its own)."""

    source: object
    cls: str
    window_start_ms: float
    window_s: float
    first_alert_flow_id: int | None = None
    count: int = 0
    first_ms: float = float("inf")
    last_ms: float = float("-inf")
    max_score: float = 0.0
    destinations: set = field(default_factory=set)
    dest_ports: set = field(default_factory=set)
    truncated: bool = False
    #: folded by destination (``destination``), counting distinct ``sources``, instead of by source
    by_destination: bool = False
    destination: object = None
    sources: set = field(default_factory=set)

    @property
    def window_end_ms(self) -> float:
        return self.window_start_ms + self.window_s * 1000.0


class Suppressor:
    """Stateful across frames: feed it every alert in stream order with :meth:`admit`."""

    def __init__(self, config: SuppressConfig = SuppressConfig()):
        self.config = config
        self.open: dict[tuple, Aggregate] = {}
        self.closed: list[Aggregate] = []
        self.clock_ms = float("-inf")
        self.n_suppressed = 0

    def _key(self, source, cls) -> tuple:
        return (source,) if self.config.key == "source" else (source, cls)

    def admit(self, times_ms: np.ndarray, sources: np.ndarray, classes: np.ndarray, dests: np.ndarray | None,
              dports: np.ndarray | None, scores: np.ndarray | None = None,
              flow_ids: np.ndarray | None = None, by_destination: np.ndarray | None = None) -> np.ndarray:
        """For each alert, ``True`` if it goes out now, ``False`` if it is folded into its window;
        alerts where ``by_destination`` holds fold by destination and class."""
        n = len(times_ms)
        send = np.ones(n, dtype=bool)
        window_ms = self.config.window_s * 1000.0
        cap = self.config.max_distinct
        dests_l = dests.tolist() if dests is not None else [None] * n
        ports_l = np.nan_to_num(np.asarray(dports, dtype="float64")).astype(np.int64).tolist() if dports is not None else [None] * n
        scores_l = np.asarray(scores, dtype="float64").tolist() if scores is not None else [0.0] * n
        ids_l = flow_ids.tolist() if flow_ids is not None else [None] * n
        victim_l = np.asarray(by_destination, bool).tolist() if by_destination is not None and dests is not None \
            else [False] * n
        for i, (t, src, cls) in enumerate(zip(times_ms.tolist(), sources.tolist(), classes.tolist())):
            if t > self.clock_ms:
                self.clock_ms = t
            victim = victim_l[i]
            key = ("to", dests_l[i], cls) if victim else self._key(src, cls)
            agg = self.open.get(key)
            if agg is not None and t >= agg.window_start_ms + window_ms:
                self._close(key)
                agg = None
            if agg is None:
                self.open[key] = Aggregate(None if victim else src, str(cls), t, self.config.window_s, ids_l[i],
                                           by_destination=victim, destination=dests_l[i] if victim else None)
                continue
            if victim:
                if len(agg.sources) < cap:
                    agg.sources.add(src)
                elif src not in agg.sources:
                    agg.truncated = True
            send[i] = False
            agg.count += 1
            agg.first_ms = min(agg.first_ms, t)
            agg.last_ms = max(agg.last_ms, t)
            agg.max_score = max(agg.max_score, scores_l[i])
            if len(agg.destinations) < cap and len(agg.dest_ports) < cap:
                agg.destinations.add(dests_l[i])
                agg.dest_ports.add(ports_l[i])
            elif dests_l[i] not in agg.destinations or ports_l[i] not in agg.dest_ports:
                agg.truncated = True
        self.n_suppressed += int((~send).sum())
        return send

    def advance(self, now_ms: float) -> None:
        """Close every window that ended before flow time ``now_ms`` (the stream has moved past it)."""
        self.clock_ms = max(self.clock_ms, now_ms)
        for key in [k for k, a in self.open.items() if a.window_end_ms <= self.clock_ms]:
            self._close(key)

    def finish(self) -> None:
        """The input ended: close every open window."""
        for key in list(self.open):
            self._close(key)

    def _close(self, key: tuple) -> None:
        agg = self.open.pop(key)
        if agg.count:
            self.closed.append(agg)

    def take_closed(self) -> list[Aggregate]:
        """Aggregates closed since the last call (those that folded at least one alert)."""
        out, self.closed = self.closed, []
        return out
