"""Stitching one-way records into bidirectional NF flows.

Two one-way records belong to one conversation when they come from the same
exporter domain, have the same protocol, and one's source (address, port)
is the other's destination; their times must overlap within ``gap_ms``.
The record that started first is the client (``IN``); at equal start times
a TCP side that sent SYN without ACK is the client, then the side with the
higher port (the ephemeral one), then the record that arrived first.

A record waits at most ``wait_s`` (of arrival time) for its partner. The
work is done on whole batches with numpy and pandas: records are grouped by
their conversation key, and the k-th record of each direction is paired
with the k-th of the other, so a long conversation exported in several
pieces pairs piece by piece.

>>> import numpy as np
>>> def rec(src, sport, dst, dport, pkts, start, arrival):
...     return {"_SRC_HI": np.array([0], "uint64"), "_SRC_LO": np.array([src], "uint64"),
...             "_DST_HI": np.array([0], "uint64"), "_DST_LO": np.array([dst], "uint64"),
...             "L4_SRC_PORT": np.array([sport]), "L4_DST_PORT": np.array([dport]), "PROTOCOL": np.array([6]),
...             "IN_PKTS": np.array([pkts]), "OUT_PKTS": np.array([0]), "TCP_FLAGS": np.array([2]),
...             "FLOW_START_MILLISECONDS": np.array([start]), "FLOW_END_MILLISECONDS": np.array([start + 5]),
...             "_ARRIVAL": np.array([arrival], "float64"), "_DOMAIN": np.array([0])}
>>> s = Stitcher(wait_s=0.5, gap_ms=1000)
>>> out, _ = s.push([rec(2, 80, 1, 40000, 3, 1010, 0.0), rec(1, 40000, 2, 80, 4, 1000, 0.1)], now=0.1)
>>> [(int(f["L4_SRC_PORT"][0]), int(f["IN_PKTS"][0]), int(f["OUT_PKTS"][0])) for f in out]
[(40000, 4, 3)]
>>> out, stats = s.push([rec(5, 1234, 6, 22, 1, 0, 1.0)], now=1.0)
>>> out, s.held()
([], 1)
>>> out, stats = s.push([], now=1.6)
>>> len(out), stats.one_way
(1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .flows import (
    ARRIVAL,
    DOMAIN,
    DURATION,
    END,
    KEY_COLUMNS,
    MAX_COLUMNS,
    MIN_COLUMNS,
    PAIRS,
    START,
    SUM_COLUMNS,
    concat_columns,
)

__all__ = ["Stitcher", "StitchStats", "take"]

_SYN, _ACK = 0x02, 0x10
_OWN = {a: b for a, b in PAIRS}
_OTHER = frozenset(_OWN.values())
_KEYED = (*KEY_COLUMNS, "L4_SRC_PORT", "L4_DST_PORT")
# An odd 64-bit constant (the golden ratio's fraction) that spreads bits when multiplied.
_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class StitchStats:
    """What one :meth:`Stitcher.push` emitted: flows made of two records, and one-way flows alone."""

    stitched: int = 0
    one_way: int = 0


def take(cols: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in cols.items()}


def _rows(cols: dict[str, np.ndarray]) -> int:
    return len(cols[ARRIVAL])


class Stitcher:
    """Pairs the one-way records of a conversation; holds a record until its partner or ``wait_s``."""

    def __init__(self, wait_s: float = 0.5, gap_ms: int = 2000):
        self.wait_s = wait_s
        self.gap_ms = gap_ms
        self._held: dict[tuple[str, ...], dict[str, np.ndarray]] = {}

    def held(self) -> int:
        """One-way records waiting for their partner."""
        return sum(_rows(c) for c in self._held.values())

    def next_deadline(self) -> float | None:
        """The arrival time (monotonic s) at which the oldest held record stops waiting."""
        if not self._held:
            return None
        return min(float(c[ARRIVAL].min()) for c in self._held.values()) + self.wait_s

    def push(self, flows: list[dict[str, np.ndarray]], now: float, *, drain: bool = False
             ) -> tuple[list[dict[str, np.ndarray]], StitchStats]:
        """Add one-way flows; return the flows ready to score (pairs, and records done waiting)."""
        groups: dict[tuple[str, ...], list[dict[str, np.ndarray]]] = {}
        for sig, held in self._held.items():
            groups.setdefault(sig, []).append(held)
        for cols in flows:
            if _rows(cols):
                groups.setdefault(tuple(sorted(cols)), []).append(cols)
        self._held = {}
        out: list[dict[str, np.ndarray]] = []
        stats = StitchStats()
        for sig, parts in groups.items():
            cols = concat_columns(parts)
            pairs, ready, keep = self._stitch(cols, now, drain)
            if pairs is not None:
                out.append(pairs)
                stats.stitched += _rows(pairs)
            if ready.any():
                out.append(take(cols, ready))
                stats.one_way += int(ready.sum())
            if keep.any():
                self._held[sig] = take(cols, keep)
        return out, stats

    def _stitch(self, cols: dict[str, np.ndarray], now: float, drain: bool):
        n = _rows(cols)
        if not all(k in cols for k in _KEYED):
            return None, np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
        i, j = self._pairs(cols)
        single = np.ones(n, dtype=bool)
        single[i] = False
        single[j] = False
        ready = single & (drain | (now - cols[ARRIVAL] >= self.wait_s))
        return (self._merge(cols, i, j) if len(i) else None), ready, single & ~ready

    def _pairs(self, cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        n = _rows(cols)
        a = (cols["_SRC_HI"], cols["_SRC_LO"], cols["L4_SRC_PORT"].astype("uint64"))
        b = (cols["_DST_HI"], cols["_DST_LO"], cols["L4_DST_PORT"].astype("uint64"))
        a_first = (a[0] < b[0]) | ((a[0] == b[0]) & ((a[1] < b[1]) | ((a[1] == b[1]) & (a[2] < b[2]))))
        same = (a[0] == b[0]) & (a[1] == b[1]) & (a[2] == b[2])
        domain = cols[DOMAIN].astype("uint64")
        proto = cols.get("PROTOCOL", np.zeros(n, dtype="int64")).astype("uint64")
        parts = [domain, proto] + [np.where(a_first, a[k], b[k]) for k in range(3)]
        parts += [np.where(a_first, b[k], a[k]) for k in range(3)]
        # The conversation key hashed to 64 bits, so that grouping is one integer sort; pairs are
        # checked field by field below, so a collision can cost a pairing but never make a wrong one.
        key = np.zeros(n, dtype="uint64")
        for part in parts:
            key = (key ^ part) * _MIX
            key ^= key >> np.uint64(31)
        _, gid = np.unique(key, return_inverse=True)
        direction = np.where(same, 2, np.where(a_first, 0, 1))
        start = cols.get(START, np.zeros(n, dtype="int64"))
        order = np.lexsort((np.arange(n), start, direction, gid))
        g, d = gid[order], direction[order]
        first = np.r_[True, (g[1:] != g[:-1]) | (d[1:] != d[:-1])]
        pos = np.arange(n)
        rank = pos - np.maximum.accumulate(np.where(first, pos, 0))
        left = pd.DataFrame({"g": g[d == 0], "r": rank[d == 0], "i": order[d == 0]})
        right = pd.DataFrame({"g": g[d == 1], "r": rank[d == 1], "j": order[d == 1]})
        matched = left.merge(right, on=["g", "r"])
        i, j = matched["i"].to_numpy(), matched["j"].to_numpy()
        same_conversation = (domain[i] == domain[j]) & (proto[i] == proto[j])
        for k in range(3):
            same_conversation &= (a[k][i] == b[k][j]) & (b[k][i] == a[k][j])
        i, j = i[same_conversation], j[same_conversation]
        if START in cols and len(i):
            s, e = cols[START], cols[END]
            ok = (s[j] <= e[i] + self.gap_ms) & (s[i] <= e[j] + self.gap_ms)
            i, j = i[ok], j[ok]
        return i, j

    def _merge(self, cols: dict[str, np.ndarray], i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
        n = len(i)
        si = cols[START][i] if START in cols else np.zeros(n)
        sj = cols[START][j] if START in cols else np.zeros(n)
        flags = cols.get("CLIENT_TCP_FLAGS", cols.get("TCP_FLAGS"))
        if flags is not None:
            syn_i = ((flags[i] & _SYN) != 0) & ((flags[i] & _ACK) == 0)
            syn_j = ((flags[j] & _SYN) != 0) & ((flags[j] & _ACK) == 0)
        else:
            syn_i = syn_j = np.zeros(n, dtype=bool)
        port_i, port_j = cols["L4_SRC_PORT"][i], cols["L4_SRC_PORT"][j]
        arrived_i = cols[ARRIVAL][i] <= cols[ARRIVAL][j]
        tie_i = (syn_i & ~syn_j) | (~(syn_j & ~syn_i) & ((port_i > port_j) | ((port_i == port_j) & arrived_i)))
        client_i = (si < sj) | ((si == sj) & tie_i)
        c, s = np.where(client_i, i, j), np.where(client_i, j, i)
        out: dict[str, np.ndarray] = {}
        for col, v in cols.items():
            if col in _OWN:
                out[col], out[_OWN[col]] = v[c], v[s]
            elif col in _OTHER:
                continue
            elif col == "TCP_FLAGS":
                out[col] = v[c] | v[s]
            elif col in MIN_COLUMNS or col == START or col == ARRIVAL:
                out[col] = np.minimum(v[c], v[s])
            elif col in MAX_COLUMNS or col == END:
                out[col] = np.maximum(v[c], v[s])
            elif col in SUM_COLUMNS:
                out[col] = v[c] + v[s]
            else:
                out[col] = v[c]
        if START in out and END in out:
            out[DURATION] = out[END] - out[START]
        elif DURATION in cols:
            out[DURATION] = np.maximum(cols[DURATION][c], cols[DURATION][s])
        return {k: out[k] for k in cols if k in out}
