"""Host context: scans, sweeps and floods seen across flows, beside the per-flow model.

A port scan's probe, a ping sweep's echo request or one spoofed SYN of a
flood is, on its own, a short unanswered flow like thousands of benign ones
(an IoT device's lost keep-alive, a refused connection); the per-flow model
cannot tell them apart and is not asked to. What gives them away is how many
there are around one host. :class:`HostContext` counts, per window of
``window_s`` seconds of flow start time (two tumbling windows half a window
apart, the larger count of the two, so that a burst across one window's end
is counted whole), the *probes* (flows with at most
three packets from the client and no answer, or a reset and at most two
packets back) of each host, and flags the probes of a host that crosses one
of these thresholds:

* **vertical scan** (class ``Reconnaissance``): one source probing at least
  ``vertical`` services (ports, or ICMP) of one destination;
* **horizontal scan or sweep** (``Reconnaissance``): one source probing one
  service on at least ``horizontal_tcp`` / ``horizontal_udp`` /
  ``horizontal_icmp`` destinations; for a ping sweep, the echo requests
  count whether answered or not (a sweep of a live network is answered),
  and only here;
* **fan-in** (``DDoS``): one destination probed by at least ``fan_in``
  sources (a spoofed flood, reflected answers nobody asked for);
* **repeat** (``DoS``): at least ``repeat`` probes from one source to one
  service of one destination (a single-source flood, each probe from a new
  source port);
* **half-open burst** (``DoS``): at least ``half_open`` sources sending
  unanswered SYNs (a client's lone SYN, nothing back), among all the flows
  the stage sees in one window: a flood whose every SYN has its own spoofed
  source and destination, which no per-host count reaches (a peer-to-peer
  client's many unanswered SYNs come from one source). This count is
  link-wide, so
  it grows with the size of the watched network: calibrate it on the
  network's own traffic (``scripts/calibrate_context.py``) where that is
  larger than the captures it was set on;
* **crafted flags** (``Reconnaissance``): at least ``crafted`` probes from
  one source to one destination whose TCP flags no TCP stack opens a
  conversation with (none at all, FIN without ACK, SYN with FIN or RST: the
  NULL, FIN and Xmas scans, OS fingerprinting's odd probes; such a flow is
  a probe whatever its packet counts, as unanswered probes are resent). The
  source is then taken as probing that destination: every flow between the
  two in that window and those beside it is flagged, answered ones too
  (fingerprinting's echo requests and SYNs to an open port are answered) and
  the answers a meter splits off into flows of their own.

Multicast and broadcast destinations of UDP and ICMP (device discovery) are
not counted; TCP cannot be multicast, so TCP flows to them are.

The thresholds are the largest count any benign window reaches on the
training and validation captures of the shipped model's split, doubled, and
never below ``floor`` (``crafted``: never below 2; ``scripts/calibrate_context.py`` measures them and
prints these values; ``docs/model-card.md`` gives its output). A flow is
flagged once its window has crossed: within one chunk every probe of the
crossing host is flagged, earlier chunks' verdicts are not revised, so a
stream flags a scan from the chunk in which it crosses. The state (the
probes of the current and the previous window) is bounded by
``max_probes``; past it the oldest are forgotten.

The stage needs the address columns and the flows' start times
(``FLOW_START_MILLISECONDS``: the meter's and the collector's flows have
them); a flow file without them (e.g. the NF v2 files, whose rows carry no
time, and the NF-CSE-CIC-IDS2018 files, which carry no addresses) is scored
by the model alone.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from ..models.params import number_in, positive_int

__all__ = ["HostContext", "HostContextConfig", "add_context", "context_columns", "crafted_mask", "echo_request_mask",
           "half_open_mask", "peak_counts", "probe_mask"]

log = logging.getLogger(__name__)

SRC, DST = "IPV4_SRC_ADDR", "IPV4_DST_ADDR"
TIME = "FLOW_START_MILLISECONDS"
#: Columns the stage reads; a frame without the addresses or the packet counts gets no context.
REQUIRED = (SRC, DST, TIME, "PROTOCOL", "L4_DST_PORT", "IN_PKTS", "OUT_PKTS")
SCAN_CLASS, FLOOD_CLASS, REPEAT_CLASS = "Reconnaissance", "DDoS", "DoS"
# A probe's protocol kind, as stored with the carried probes; it indexes the horizontal thresholds.
_TCP, _UDP, _ICMP = 0, 1, 2


@dataclass(frozen=True)
class HostContextConfig:
    """Thresholds of :class:`HostContext` (see the module's description for their meaning)."""

    enabled: bool = True
    window_s: float = 60.0
    vertical: int = 12
    horizontal_tcp: int = 42
    horizontal_udp: int = 72
    horizontal_icmp: int = 8
    fan_in: int = 8
    repeat: int = 20
    half_open: int = 42
    crafted: int = 2
    max_probes: int = 1_000_000

    def __post_init__(self):
        number_in("context.window_s", self.window_s, 0, float("inf"), low_open=True, high_open=True)
        for f in fields(self):
            if f.name not in ("enabled", "window_s"):
                positive_int(f"context.{f.name}", getattr(self, f.name), 2)


def context_columns(columns) -> bool:
    """Whether flows with these columns can be given host context."""
    have = set(columns)
    return all(c in have for c in REQUIRED)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy(np.int64)


_FIN, _SYN, _RST, _ACK = 1, 2, 4, 16


def _flags(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    flags = np.zeros(len(frame), np.int64)
    for column in columns:
        if column in frame.columns:
            flags |= _numbers(frame, column)
    return flags


def _client_flags(frame: pd.DataFrame) -> np.ndarray:
    """The client's TCP flags: ``CLIENT_TCP_FLAGS`` where the flows have it, else the flow's cumulative
    ``TCP_FLAGS`` (a client's flags in an unanswered flow)."""
    column = "CLIENT_TCP_FLAGS" if "CLIENT_TCP_FLAGS" in frame.columns else "TCP_FLAGS"
    return _flags(frame, (column,))


def probe_mask(frame: pd.DataFrame) -> np.ndarray:
    """Flows that are probes: at most three packets from the client, and no answer, or a reset and at
    most two packets back."""
    in_pkts, out_pkts = _numbers(frame, "IN_PKTS"), _numbers(frame, "OUT_PKTS")
    tcp = _numbers(frame, "PROTOCOL") == 6
    flags = _flags(frame, ("TCP_FLAGS", "CLIENT_TCP_FLAGS", "SERVER_TCP_FLAGS"))
    reset = tcp & ((flags & _RST) > 0) & (out_pkts <= 2)
    return (in_pkts <= 3) & ((out_pkts == 0) | reset)


def echo_request_mask(frame: pd.DataFrame) -> np.ndarray:
    """ICMP echo requests (ICMPv4 type 8, ICMPv6 128; ``ICMP_TYPE`` is type * 256 + code) of at most three
    packets, answered or not; none where the flows carry no ``ICMP_TYPE``."""
    if "ICMP_TYPE" not in frame.columns:
        return np.zeros(len(frame), bool)
    proto, kind = _numbers(frame, "PROTOCOL"), _numbers(frame, "ICMP_TYPE") // 256
    return (((proto == 1) & (kind == 8)) | ((proto == 58) & (kind == 128))) & (_numbers(frame, "IN_PKTS") <= 3)


def half_open_mask(frame: pd.DataFrame) -> np.ndarray:
    """TCP flows that are a client's SYN and nothing more: SYN its only flag, nothing back."""
    tcp = _numbers(frame, "PROTOCOL") == 6
    return tcp & (_client_flags(frame) == _SYN) & (_numbers(frame, "OUT_PKTS") == 0)


def crafted_mask(frame: pd.DataFrame) -> np.ndarray:
    """TCP flows whose client flags no TCP stack opens a conversation with: none at all, FIN without ACK,
    or SYN with FIN or RST (where the flows carry flags; a frame without a flag column has none)."""
    if "CLIENT_TCP_FLAGS" not in frame.columns and "TCP_FLAGS" not in frame.columns:
        return np.zeros(len(frame), bool)
    tcp = _numbers(frame, "PROTOCOL") == 6
    flags = _client_flags(frame)
    null = flags == 0
    fin_no_ack = ((flags & _FIN) > 0) & ((flags & _ACK) == 0)
    syn_fin_rst = ((flags & _SYN) > 0) & ((flags & (_FIN | _RST)) > 0) & ((flags & _ACK) == 0)
    return tcp & (null | fin_no_ack | syn_fin_rst)


def _addresses(frame: pd.DataFrame, column: str) -> np.ndarray:
    """The column as text, ``""`` where missing."""
    values = frame[column]
    return values.where(values.notna(), "").astype(str).str.strip().to_numpy(dtype=object)


_GROUP_ADDRESS: dict[str, bool] = {}


def _is_group_address(text: str) -> bool:
    known = _GROUP_ADDRESS.get(text)
    if known is None:
        try:
            address = ipaddress.ip_address(text)
            known = bool(address.is_multicast or (address.version == 4 and text.endswith(".255")))
        except ValueError:
            known = False
        if len(_GROUP_ADDRESS) < 100_000:
            _GROUP_ADDRESS[text] = known
    return known


def _counts(rows: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """:func:`_window_counts` in two tumbling windows half a window apart, the larger of each count: a
    burst that straddles one window's end lies whole in the other's."""
    src, dst, svc = (pd.factorize(rows[c].to_numpy())[0] for c in ("src", "dst", "svc"))
    proto = rows["proto"].to_numpy().astype(np.int64)
    flags = tuple(rows[c].to_numpy(bool) for c in ("answered", "half_open", "crafted"))
    first, second = (_window_counts(rows[c].to_numpy(np.int64), src, dst, svc, proto, *flags) for c in ("w", "w2"))
    return tuple(np.maximum(a, b) for a, b in zip(first, second))


def _window_counts(w: np.ndarray, src: np.ndarray, dst: np.ndarray, svc: np.ndarray, proto: np.ndarray,
                   answered: np.ndarray, half_open: np.ndarray, crafted: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each probe, within its window: the services its source probes on its destination, the
    destinations its source probes on its service, the sources probing its destination, the probes of its
    source to its service of its destination, the sources of half-open SYNs (on every host; 0 for a probe
    that is not one) and the crafted probes of its source to its destination."""
    w = w - w.min()
    by_pair = _group(w, src, dst)
    by_service = _group(w, proto, src, svc)
    by_victim = _group(w, dst)
    by_probe = _group(by_pair, svc)
    # Answered echo requests count towards a sweep only (a live network answers a ping sweep).
    if answered.any():
        strict = ~answered
        vertical, fan_in, repeat = (np.zeros(len(w), np.int64) for _ in range(3))
        if strict.any():
            vertical[strict] = _distinct(by_pair[strict], svc[strict])
            fan_in[strict] = _distinct(by_victim[strict], src[strict])
            repeat[strict] = np.bincount(by_probe[strict], minlength=int(by_probe.max()) + 1)[by_probe[strict]]
    else:
        vertical, fan_in = _distinct(by_pair, svc), _distinct(by_victim, src)
        repeat = np.bincount(by_probe)[by_probe]
    # Sources of half-open SYNs per window: a spoofed flood's every SYN has its own.
    half_open_sources = np.zeros(len(w), np.int64)
    if half_open.any():
        half_open_sources[half_open] = _distinct(w[half_open], src[half_open])
    crafted_pairs = np.bincount(by_pair, weights=crafted).astype(np.int64)[by_pair] if crafted.any() else \
        np.zeros(len(w), np.int64)
    return vertical, _distinct(by_service, dst), fan_in, repeat, half_open_sources, crafted_pairs


def _group(*codes: np.ndarray) -> np.ndarray:
    """One small integer per distinct combination of the code columns (each code below len(rows))."""
    key = codes[0].astype(np.int64)
    for c in codes[1:]:
        key = pd.factorize(key * (int(c.max()) + 1) + c)[0].astype(np.int64)
    return key


def _distinct(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For each row, how many distinct ``value`` codes its ``group`` holds."""
    width = int(value.max()) + 1
    pairs = pd.unique(group * width + value)
    return np.bincount(pairs // width, minlength=int(group.max()) + 1)[group]


def _reasons(cfg: HostContextConfig, crossed: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Why each flagged probe was flagged, in words: the first count that crossed its threshold.
    ``crossed`` holds, in :data:`_KINDS` order, each kind's crossing and its count."""
    window = f"{cfg.window_s:g} s"
    out = np.empty(len(crossed[0][0]), dtype=object)
    todo = np.ones(len(out), bool)
    for (which, counts), (_, text) in zip(crossed, _KINDS):
        mine = todo & which
        if mine.any():
            # One string per distinct count, not per flow: a flood's thousands of probes share a few counts.
            values, codes = np.unique(counts[mine], return_inverse=True)
            out[mine] = np.array([text.format(int(v), window) for v in values], dtype=object)[codes]
        todo &= ~which
    return out


#: Each kind of count, in the order a flagged flow's reason is chosen, with its reason's words.
_KINDS = (
    ("crafted", "crafted flags: {} probes from this source to this destination with TCP flags no stack opens "
                "with (none, FIN without ACK, SYN with FIN or RST) in {}"),
    ("vertical", "vertical scan: {} services of one destination probed by one source in {}"),
    ("horizontal", "horizontal scan: one service probed on {} destinations by one source in {}"),
    ("fan_in", "fan-in: one destination probed by {} sources in {}"),
    ("repeat", "repeat: {} probes from one source to one service of one destination in {}"),
    ("half_open", "half-open burst: {} sources each sent unanswered SYNs, among all flows, in {}"),
)


def peak_counts(frame: pd.DataFrame, config: HostContextConfig = HostContextConfig()) -> dict[str, int]:
    """The largest count of each threshold's kind that any window of ``frame`` reaches (0 where none);
    what :class:`HostContextConfig`'s thresholds are calibrated on."""
    peaks = {"vertical": 0, "horizontal_tcp": 0, "horizontal_udp": 0, "horizontal_icmp": 0, "fan_in": 0,
             "repeat": 0, "half_open": 0, "crafted": 0}
    if not len(frame) or not context_columns(frame.columns):
        return peaks
    _, rows, _ = HostContext(config)._probes(frame)
    if not len(rows):
        return peaks
    vertical, horizontal, fan_in, repeat, half_open, crafted = _counts(rows)
    peaks.update(vertical=int(vertical.max()), fan_in=int(fan_in.max()), repeat=int(repeat.max()),
                 half_open=int(half_open.max()), crafted=int(crafted.max()))
    for proto, code in (("tcp", _TCP), ("udp", _UDP), ("icmp", _ICMP)):
        mine = rows["proto"].to_numpy() == code
        peaks[f"horizontal_{proto}"] = int(horizontal[mine].max()) if mine.any() else 0
    return peaks


class HostContext:
    """Per-host counts over windows of flow start time, carried from one chunk to the next.

    :meth:`mark` takes a chunk of flows and returns, for each, whether host
    context flags it and with which class (``""`` when not).
    """

    _STATE = ("w", "w2", "src", "dst", "svc", "proto", "half_open", "crafted", "answered")

    def __init__(self, config: HostContextConfig = HostContextConfig()):
        self.config = config
        self._state = pd.DataFrame({c: pd.Series(dtype=object) for c in self._STATE})
        # (source, destination) -> the last window in which the source sent crafted probes to it.
        self._prober: dict[tuple[str, str], int] = {}
        self.n_flagged = 0  # flows host context flagged
        self.n_added = 0  # of those, flows the model had let pass
        self._warned = False

    def _probes(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, tuple[np.ndarray, ...]]:
        """The probes' positions in ``frame``, their rows of state, and ``(src, dst, start, timed)`` for
        every flow of ``frame`` (what :meth:`_tag_probers` matches the probers' pairs on)."""
        # A flow with crafted flags is a probe whatever its packet counts (unanswered probes are resent).
        crafted = crafted_mask(frame)
        strict = probe_mask(frame) | crafted
        echo = echo_request_mask(frame)
        probe = strict | echo
        dst, src = _addresses(frame, DST), _addresses(frame, SRC)
        codes, uniques = pd.factorize(dst)
        group = np.fromiter((_is_group_address(u) for u in uniques), bool, len(uniques))[codes]
        timed = pd.to_numeric(frame[TIME], errors="coerce").notna().to_numpy()
        protocol = _numbers(frame, "PROTOCOL")
        # Discovery to group addresses (SSDP, mDNS, broadcasts) is not probing; TCP cannot be multicast or
        # broadcast, so a TCP flow to such an address is counted like any other (a spoofed flood's, say).
        group &= protocol != 6
        idx = np.flatnonzero(probe & ~group & timed & (dst != "") & (src != ""))
        proto = protocol[idx]
        port = _numbers(frame, "L4_DST_PORT")[idx]
        icmp = np.isin(proto, (1, 58))
        width = int(self.config.window_s * 1000)
        start_all = _numbers(frame, TIME)
        start = start_all[idx]
        rows = pd.DataFrame({"w": start // width, "w2": (start + width // 2) // width, "src": src[idx], "dst": dst[idx],
                             # one service per ICMP protocol: a sweep's echo requests and its other types alike
                             "svc": np.where(icmp, -proto, port),
                             "proto": np.select([icmp, proto == 6], [_ICMP, _TCP], _UDP).astype(np.int8),
                             "half_open": half_open_mask(frame)[idx], "crafted": crafted[idx],
                             "answered": (echo & ~strict)[idx]})
        return idx, rows, (src, dst, start_all, timed)

    def mark(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(flagged, classes)`` for the flows of ``frame``; the counts carry on to the next call."""
        flagged, classes, _, _ = self.verdicts(frame)
        return flagged, classes

    def verdicts(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(flagged, classes, reasons, fan_in)``: :meth:`mark`'s verdicts; for each flagged flow, the count
        that crossed its threshold, in words (``""`` elsewhere); and which flows crossed by fan-in (a victim's
        many sources: alerts to fold by destination)."""
        n = len(frame)
        flagged, classes = np.zeros(n, bool), np.full(n, "", dtype=object)
        reasons, victim = np.full(n, "", dtype=object), np.zeros(n, bool)
        if not self.config.enabled or n == 0:
            return flagged, classes, reasons, victim
        if not context_columns(frame.columns):
            if not self._warned:
                missing = [c for c in REQUIRED if c not in frame.columns]
                log.info("host context: the flows have no %s; scored by the model alone", ", ".join(missing))
                self._warned = True
            return flagged, classes, reasons, victim
        idx, rows, whole = self._probes(frame)
        if not len(idx):
            self._tag_probers(whole, rows, flagged, classes, reasons)
            self.n_flagged += int(flagged.sum())
            return flagged, classes, reasons, victim
        n_old = len(self._state)
        both = pd.concat([self._state, rows], ignore_index=True) if n_old else rows
        cfg = self.config
        counts = _counts(both)
        vertical, horizontal, fan_in, repeat, half_open, crafted = (c[n_old:] for c in counts)
        limit = np.array([cfg.horizontal_tcp, cfg.horizontal_udp, cfg.horizontal_icmp])[rows["proto"].to_numpy()]
        mine = rows["half_open"].to_numpy(bool)
        crossed = [(crafted >= cfg.crafted, crafted), (vertical >= cfg.vertical, vertical),
                   (horizontal >= limit, horizontal), (fan_in >= cfg.fan_in, fan_in),
                   (repeat >= cfg.repeat, repeat), (mine & (half_open >= cfg.half_open), half_open)]
        scan = crossed[0][0] | crossed[1][0] | crossed[2][0]
        flood = crossed[3][0]
        repeated = crossed[4][0] | crossed[5][0]
        hit = scan | flood | repeated
        flagged[idx[hit]] = True
        classes[idx[repeated]] = REPEAT_CLASS
        classes[idx[flood]] = FLOOD_CLASS
        classes[idx[scan]] = SCAN_CLASS
        victim[idx[flood & ~scan]] = True
        reasons[idx[hit]] = _reasons(cfg, [(which[hit], count[hit]) for which, count in crossed])
        self._tag_probers(whole, rows[crossed[0][0]], flagged, classes, reasons)
        self.n_flagged += int(flagged.sum())
        # Keep the probes of the latest two windows, at most max_probes of them (the newest).
        latest = both["w"].max()
        keep = both[both["w"] >= latest - 1]
        if len(keep) > cfg.max_probes:
            keep = keep.iloc[-cfg.max_probes:]
        self._state = keep.reset_index(drop=True)
        return flagged, classes, reasons, victim

    def _tag_probers(self, whole: tuple[np.ndarray, ...], crossing: pd.DataFrame, flagged: np.ndarray,
                     classes: np.ndarray, reasons: np.ndarray) -> None:
        """Flag every flow (answered ones too) between a source that sent crafted probes and their
        destination, in the window it did and those beside it; ``whole`` is :meth:`_probes`'s
        ``(src, dst, start, timed)`` of the chunk, ``crossing`` this chunk's probes that crossed ``crafted``."""
        for key, last in crossing.groupby(["src", "dst"])["w"].max().items():
            self._prober[key] = max(int(last), self._prober.get(key, -1))
        if not self._prober:
            return
        src, dst, start, timed = whole
        w = start // int(self.config.window_s * 1000)
        # Only flows with both ends among the probers' hosts can belong to a pair (one hash lookup a flow);
        # those few are matched pair by pair, both ways: the answers a meter splits off are part of it.
        hosts = list({h for pair in self._prober for h in pair})
        near = np.flatnonzero(timed & pd.Series(src).isin(hosts).to_numpy() & pd.Series(dst).isin(hosts).to_numpy())
        if len(near):
            last = np.fromiter((max(self._prober.get((src[i], dst[i]), -2), self._prober.get((dst[i], src[i]), -2))
                                for i in near), np.int64, len(near))
            hit = near[(last >= 0) & (w[near] >= last - 1) & (w[near] <= last + 1) & ~flagged[near]]
            if len(hit):
                flagged[hit] = True
                classes[hit] = SCAN_CLASS
                reasons[hit] = (f"crafted flags: probes with TCP flags no stack opens with went between these two "
                                f"hosts within {self.config.window_s:g} s")
        # Forget probers not seen for two windows, and keep the map bounded.
        latest = int(w[timed].max()) if timed.any() else max(self._prober.values())
        self._prober = {k: v for k, v in self._prober.items() if v >= latest - 1}
        if len(self._prober) > self.config.max_probes:
            self._prober = dict(sorted(self._prober.items(), key=lambda kv: kv[1])[-self.config.max_probes:])

    def apply(self, frame: pd.DataFrame, classes: np.ndarray,
              alerts: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray] | None]:
        """The model's ``(classes, alerts)`` with host context's verdicts added, and the columns that carry
        them to the alert writer (``None`` when host context flags nothing in ``frame``): a flow the model
        let pass and host context flags becomes an alert of host context's class; a flow both flag keeps
        the model's class."""
        from ..io.alerts import CONTEXT_COLUMN, FOLD_BY_DESTINATION

        flagged, context_classes, reasons, victim = self.verdicts(frame)
        if not flagged.any():
            return classes, alerts, None
        self.n_added += int((flagged & ~np.asarray(alerts, bool)).sum())
        classes, alerts = add_context(classes, alerts, flagged, context_classes)
        # A victim's alerts (the model's too) fold by destination: one window per victim, not per source.
        notes = {CONTEXT_COLUMN: reasons, FOLD_BY_DESTINATION: victim}
        return classes, alerts, notes

    @classmethod
    def per_capture(cls, frame: pd.DataFrame, config: HostContextConfig = HostContextConfig()) -> np.ndarray:
        """:meth:`flags_per_unit` with each capture (``Capture`` column) on its own; a frame without that
        column is one unit."""
        units = frame["Capture"].fillna("").astype(str).to_numpy() if "Capture" in frame.columns else \
            np.zeros(len(frame), int)
        return cls.flags_per_unit(frame, units, config)

    @classmethod
    def flags_per_unit(cls, frame: pd.DataFrame, units, config: HostContextConfig = HostContextConfig()) -> np.ndarray:
        """Host context's verdicts with each unit of flows (``units``: a label per flow, e.g. its capture)
        counted on its own, as ``detect`` sees one capture at a time."""
        flagged = np.zeros(len(frame), bool)
        for _, positions in pd.Series(np.arange(len(frame))).groupby(np.asarray(units)):
            idx = positions.to_numpy()
            flagged[idx] = cls(config).mark(frame.iloc[idx])[0]
        return flagged


def add_context(classes: np.ndarray, alerts: np.ndarray, flagged: np.ndarray,
                context_classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's ``(classes, alerts)`` with host context's flags added: a flow the model let pass and host
    context flagged becomes an alert of host context's class; a flow both flag keeps the model's class."""
    alerts = np.asarray(alerts, bool)
    new = np.asarray(flagged, bool) & ~alerts
    classes = np.asarray(classes, dtype=object).copy()
    classes[new] = np.asarray(context_classes, dtype=object)[new]
    return classes, alerts | flagged
