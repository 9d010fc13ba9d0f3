"""Alert sinks: per-flow verdicts as JSON lines (in the shape of Suricata's
EVE ``alert`` and ``flow`` events) or CSV.

>>> import io
>>> out = io.StringIO()
>>> frame = pd.DataFrame({"IPV4_SRC_ADDR": ["10.0.0.1"], "L4_SRC_PORT": [4000], "IPV4_DST_ADDR": ["10.0.0.2"],
...                       "L4_DST_PORT": [80], "PROTOCOL": [6]})
>>> w = AlertWriter(out, "jsonl", model_name="m", model_version="1")
>>> w.write(frame, np.array([0.97]), np.array(["DoS"]), np.array([True]), np.array([2]))
>>> rec = json.loads(out.getvalue())
>>> rec["event_type"], rec["proto"], rec["alert"]["category"], rec["dest_port"]
('alert', 'TCP', 'DoS', 80)
"""

from __future__ import annotations

import csv
import json
import zlib
from datetime import datetime, timezone
from typing import IO

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = ["AlertWriter", "PROTO_NAMES", "severity"]

PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 47: "GRE", 132: "SCTP"}
CSV_FIELDS = ["row", "flow_id", "timestamp", "src_ip", "src_port", "dest_ip", "dest_port", "proto",
              "score", "predicted_class", "alert", "true_class"]


def severity(score: float) -> int:
    """Suricata-style severity: 1 (high) for scores >= 0.99, 2 for >= 0.9, else 3."""
    return 1 if score >= 0.99 else (2 if score >= 0.9 else 3)


def _flow_id(src, sport, dst, dport, proto, start) -> int:
    """A stable id from the 5-tuple and start time (Suricata's flow_id is a number too)."""
    key = f"{src}|{sport}|{dst}|{dport}|{proto}|{start}".encode()
    return zlib.crc32(key) << 20 | (zlib.adler32(key) & 0xFFFFF)


def _iso(ms: float | None) -> str:
    when = datetime.now(timezone.utc) if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


class AlertWriter:
    """Writes one record per flow (``only_alerts`` keeps alerts only).

    Flows at or above the threshold are ``event_type: alert``; the others are
    ``event_type: flow`` records that still carry the score and class.
    """

    def __init__(self, fh: IO[str], fmt: str = "jsonl", *, model_name: str = "", model_version: str = "",
                 only_alerts: bool = False):
        if fmt not in ("jsonl", "csv"):
            raise ConfigError(f"format must be 'jsonl' or 'csv', got {fmt!r}")
        self.fh, self.fmt = fh, fmt
        self.model_name, self.model_version = model_name, model_version
        self.only_alerts = only_alerts
        self._csv = None
        self.n_written = 0

    def write(self, flows: pd.DataFrame, scores: np.ndarray, classes: np.ndarray, alerts: np.ndarray,
              rows: np.ndarray, true_classes: np.ndarray | None = None) -> None:
        n = len(flows)

        def col(name, default=None):
            return flows[name].to_numpy() if name in flows.columns else np.full(n, default, dtype=object)

        src, dst = col("IPV4_SRC_ADDR", ""), col("IPV4_DST_ADDR", "")
        sport, dport = col("L4_SRC_PORT", 0), col("L4_DST_PORT", 0)
        proto = col("PROTOCOL", 0)
        start = col("FLOW_START_MILLISECONDS", None)
        fid = col("FLOW_ID", None)
        if self.fmt == "csv" and self._csv is None:
            self._csv = csv.writer(self.fh)
            self._csv.writerow(CSV_FIELDS)
        for i in range(n):
            if self.only_alerts and not alerts[i]:
                continue
            p = int(proto[i]) if proto[i] is not None else 0
            ms = None if start[i] is None or (isinstance(start[i], float) and np.isnan(start[i])) else float(start[i])
            flow_id = int(fid[i]) if fid[i] is not None else _flow_id(src[i], sport[i], dst[i], dport[i], p, ms)
            score = float(scores[i])
            if self.fmt == "csv":
                self._csv.writerow([int(rows[i]), flow_id, _iso(ms) if ms is not None else "", src[i], int(sport[i]),
                                    dst[i], int(dport[i]), PROTO_NAMES.get(p, p), f"{score:.6f}", classes[i],
                                    int(bool(alerts[i])), "" if true_classes is None else true_classes[i]])
            else:
                record = {
                    "timestamp": _iso(ms),
                    "flow_id": flow_id,
                    "event_type": "alert" if alerts[i] else "flow",
                    "src_ip": str(src[i]),
                    "src_port": int(sport[i]),
                    "dest_ip": str(dst[i]),
                    "dest_port": int(dport[i]),
                    "proto": PROTO_NAMES.get(p, str(p)),
                }
                verdict = {"category": str(classes[i]), "score": round(score, 6)}
                if alerts[i]:
                    record["alert"] = {
                        "action": "allowed",
                        "signature": f"flowsentinel {self.model_name}: {classes[i]}",
                        "severity": severity(score),
                        **verdict,
                    }
                record["flowsentinel"] = {
                    **verdict,
                    "alert": bool(alerts[i]),
                    "row": int(rows[i]),
                    "model": self.model_name,
                    "model_version": self.model_version,
                }
                if true_classes is not None:
                    record["flowsentinel"]["true_class"] = str(true_classes[i])
                self.fh.write(json.dumps(record) + "\n")
            self.n_written += 1
