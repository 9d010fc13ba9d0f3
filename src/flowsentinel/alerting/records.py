"""Verdicts as EVE records (as Suricata writes them) and as Elastic Common Schema documents.

EVE ``alert`` records carry Suricata's envelope (``timestamp`` from the
flow, ``flow_id``, ``in_iface``, ``host``, the 5-tuple, ``community_id``,
``app_proto``), an ``alert`` object (``action``, ``gid``, ``signature_id``,
``rev``, ``signature``, ``category``, ``severity``, ``metadata``) and a
``flow`` object (packets and bytes each way, ``start``, ``end``), so that
Filebeat's Suricata module, Wazuh's Suricata rules and Splunk's
``suricata`` sourcetype take them unchanged. ``event_type: flow`` records
for flows that are not alerts carry the same envelope. flowsentinel's own
fields (class, score, threshold, model, row, explanation) sit under
``flowsentinel``.

Where the input has no value for a field (NF-CSE-CIC-IDS2018 has no
addresses, NF v2 files have no times) the key is left out and
``flowsentinel.absent`` lists it; where a flow has no time the record is
stamped with the clock and says ``flowsentinel.time_source: clock``.

Records are built column-wise (see :mod:`flowsentinel.alerting.fields`).

>>> import json, pandas as pd
>>> frame = pd.DataFrame({"IPV4_SRC_ADDR": ["10.0.0.1"], "L4_SRC_PORT": [4000], "IPV4_DST_ADDR": ["10.0.0.2"],
...                       "L4_DST_PORT": [80], "PROTOCOL": [6], "L7_PROTO": [7.0], "IN_PKTS": [3], "OUT_PKTS": [2],
...                       "IN_BYTES": [180], "OUT_BYTES": [120], "FLOW_START_MILLISECONDS": [1.5e12],
...                       "FLOW_END_MILLISECONDS": [1.5e12 + 20]})
>>> b = RecordBuilder(RecordConfig(model_name="m", model_version="1", threshold=0.5, sensor="s1"))
>>> text = b.frame_text(FlowColumns.from_frame(frame), np.array([2]), np.array([0.97]), np.array(["DoS"]),
...                     np.array([True]))
>>> rec = json.loads(b.eve_lines(text)[0])
>>> rec["timestamp"], rec["event_type"], rec["app_proto"], rec["alert"]["signature_id"], rec["flow"]["bytes_toclient"]
('2017-07-14T02:40:00.020000+0000', 'alert', 'http', 1717011, 120)
>>> doc = json.loads(b.ecs_lines(text)[0])
>>> doc["event"]["kind"], doc["event"]["category"], doc["network"]["community_id"] == rec["community_id"]
('alert', ['network', 'intrusion_detection'], True)
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .fields import (
    FlowColumns,
    cat,
    cat_list,
    flow_ids,
    iso_times,
    json_fixed,
    json_ints,
    json_strings,
    proto_names,
    text_by_value,
)
from .signatures import GID, rule_rev, signature
from .suppress import Aggregate

__all__ = ["RecordConfig", "RecordBuilder", "FrameText", "ECS_VERSION"]

#: The ECS version the documents follow.
ECS_VERSION = "8.11.0"


def _q(value) -> str:
    return json.dumps(value)


def _opt(mask: np.ndarray, text) -> np.ndarray:
    """``text`` where ``mask`` holds, else the empty string (a key left out)."""
    return np.where(mask, text, "").astype(object)


def _object(key: str, pieces: list) -> np.ndarray | str:
    """``,"key":{...}`` from pieces that each start with a comma; left out where every piece is empty."""
    if not pieces:
        return ""
    body = cat(*pieces)
    return np.asarray([f',"{key}":{{{b[1:]}}}' if b else "" for b in body.tolist()], dtype=object)


def _scatter(n: int, idx: np.ndarray, values) -> np.ndarray:
    """An object array of ``n`` empty strings with ``values`` at ``idx``."""
    out = np.full(n, "", dtype=object)
    if len(idx):
        out[idx] = values
    return out


@dataclass(frozen=True)
class RecordConfig:
    """What every record of one writer shares.

    Attributes:
        model_name, model_version: the model's identity (``alert.metadata``,
            ``flowsentinel.model``); ``rev`` derives from the version.
        threshold: the model's alert threshold (``alert.metadata``).
        sensor: ``host`` in EVE, ``observer.hostname`` in ECS (default: this
            machine's host name).
        interface: ``in_iface``, the interface metered live (none for files).
        community_id_seed: the Community ID seed (0, the default of Suricata
            and Zeek; every sensor of a site must use the same).
    """

    model_name: str = ""
    model_version: str = ""
    threshold: float | None = None
    sensor: str | None = None
    interface: str | None = None
    community_id_seed: int = 0

    @property
    def host(self) -> str:
        return self.sensor if self.sensor is not None else socket.gethostname()


@dataclass
class FrameText:
    """One frame's verdicts and the flow fields records need, computed once for both formats."""

    n: int
    cols: FlowColumns
    when: np.ndarray
    from_clock: np.ndarray
    flow_id: np.ndarray
    proto: np.ndarray | None
    community_id: np.ndarray | None
    app_proto: np.ndarray | None
    score: np.ndarray
    class_code: np.ndarray
    classes: list
    row: np.ndarray
    alert: np.ndarray
    true_class: np.ndarray | None
    absent: list

    def take(self, idx: np.ndarray) -> "FrameText":
        out = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        out["cols"], out["n"] = self.cols.take(idx), len(idx)
        return FrameText(**out)


class RecordBuilder:
    """Builds EVE and ECS lines for one writer (one model, one sensor)."""

    def __init__(self, config: RecordConfig = RecordConfig()):
        self.config = config
        self.rev = rule_rev(config.model_version)
        self.host = config.host
        self._threshold = "null" if config.threshold is None else json_fixed(np.array([config.threshold]))[0]

    # ---- one frame's fields -------------------------------------------------
    def frame_text(self, cols: FlowColumns, rows: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                   alerts: np.ndarray, true_classes: np.ndarray | None = None,
                   clock_ms: float | None = None) -> FrameText:
        when, from_clock = cols.event_ms(clock_ms)
        absent = []
        if cols.src is None:
            absent += ["src_ip", "dest_ip"]
        if cols.sport is None:
            absent += ["src_port", "dest_port"]
        if cols.proto is None:
            absent.append("proto")
        cid = cols.community_ids(self.config.community_id_seed)
        if cid is None:
            absent.append("community_id")
        app = cols.app_protos()
        if app is None:
            absent.append("app_proto")
        for name, values in (("pkts_toserver", cols.pkts_in), ("pkts_toclient", cols.pkts_out),
                             ("bytes_toserver", cols.bytes_in), ("bytes_toclient", cols.bytes_out),
                             ("start", cols.start_ms), ("end", cols.end_ms)):
            if values is None:
                absent.append(f"flow.{name}")
        codes, uniques = pd.factorize(np.asarray(classes, dtype=object))
        return FrameText(
            n=cols.n,
            cols=cols,
            when=when,
            from_clock=from_clock,
            flow_id=flow_ids(cols, rows),
            proto=None if cols.proto is None else np.nan_to_num(cols.proto).astype(np.int64),
            community_id=cid,
            app_proto=app,
            score=np.asarray(scores, dtype="float64"),
            class_code=codes,
            classes=[str(u) for u in uniques],
            row=np.asarray(rows),
            alert=np.asarray(alerts, dtype=bool),
            true_class=None if true_classes is None else np.asarray(true_classes, dtype=object),
            absent=absent,
        )

    # ---- pieces shared by both formats ----------------------------------------
    def _by_class(self, t: FrameText, make) -> np.ndarray:
        table = np.asarray([make(c) for c in t.classes] or [""], dtype=object)
        return table[t.class_code]

    def _fs(self, t: FrameText, explanations: np.ndarray | None, suppressed: np.ndarray | None) -> np.ndarray:
        """The ``flowsentinel`` object: class, score, verdict and what the record lacks."""
        pieces = [
            self._by_class(t, lambda c: f',"flowsentinel":{{"class":{_q(c)},"score":'), json_fixed(t.score),
            np.where(t.alert, ',"alert":true', ',"alert":false').astype(object),
            f',"threshold":{self._threshold}', json_ints(t.row, ',"row":'),
            f',"model":{_q(self.config.model_name)},"model_version":{_q(self.config.model_version)}',
        ]
        if t.true_class is not None:
            pieces.append(json_strings(t.true_class, ',"true_class":'))
        if suppressed is not None:
            pieces.append(_opt(suppressed, ',"suppressed":true'))
        if t.from_clock.any():
            pieces.append(_opt(t.from_clock, ',"time_source":"clock"'))
        if t.absent:
            pieces.append(f',"absent":{json.dumps(t.absent, separators=(",", ":"))}')
        if explanations is not None:
            pieces.append(np.where(pd.notna(explanations), explanations, "").astype(object))
        return cat(*pieces, "}")

    def _times(self, t: FrameText, zone: str) -> list:
        """``,"start":"..."`` and ``,"end":"..."`` pieces where the flow has those times."""
        pieces = []
        for name, values in (("start", t.cols.start_ms), ("end", t.cols.end_ms)):
            if values is not None:
                ok = np.isfinite(values) & (values > 0)
                pieces.append(_opt(ok, iso_times(np.where(ok, values, 0.0), zone, f',"{name}":"', '"')))
        return pieces

    def _port(self, t: FrameText, values, key: str):
        return _opt(~t.cols.is_icmp & np.isfinite(values), json_ints(values, f',"{key}":'))

    def _text(self, values, key: str):
        """``,"key":"value"`` where the value is known (Community ID, app_proto: no escaping needed)."""
        return text_by_value(values, f',"{key}":"', '"')

    # ---- EVE ------------------------------------------------------------------
    def eve_lines(self, t: FrameText, idx: np.ndarray | None = None, explanations: np.ndarray | None = None,
                  suppressed: np.ndarray | None = None) -> list[str]:
        """EVE lines (no newline) for rows ``idx`` of ``t`` (default all): ``alert`` where the row is one and not suppressed."""
        t = t if idx is None else t.take(idx)
        c = t.cols
        as_alert = t.alert & (~suppressed if suppressed is not None else True)
        pieces = [iso_times(t.when, "+0000", '{"timestamp":"', '"'), json_ints(t.flow_id, ',"flow_id":')]
        if self.config.interface:
            pieces.append(f',"in_iface":{_q(self.config.interface)}')
        pieces.append(np.where(as_alert, ',"event_type":"alert"', ',"event_type":"flow"').astype(object))
        for addr, port, ip_key, port_key in ((c.src, c.sport, "src_ip", "src_port"), (c.dst, c.dport, "dest_ip", "dest_port")):
            if addr is not None:
                pieces.append(json_strings(addr, f',"{ip_key}":', missing=None))
            if port is not None:
                pieces.append(self._port(t, port, port_key))
        if t.proto is not None:
            pieces.append(proto_names(t.proto, prefix=',"proto":"', suffix='"'))
        if c.icmp_type is not None:
            pieces.append(_opt(c.is_icmp, text_by_value(c.icmp_type * 256 + c.icmp_code, "", "",
                                                        lambda v: f',"icmp_type":{v // 256},"icmp_code":{v % 256}')))
        if t.community_id is not None:
            pieces.append(self._text(t.community_id, "community_id"))
        pieces.append(f',"host":{_q(self.host)}')
        if t.app_proto is not None:
            pieces.append(self._text(t.app_proto, "app_proto"))
        alert_idx = np.flatnonzero(as_alert)
        if len(alert_idx):
            pieces.append(_scatter(t.n, alert_idx, self._eve_alert(t.take(alert_idx))))
        counters = [(name, v) for name, v in (("pkts_toserver", c.pkts_in), ("pkts_toclient", c.pkts_out),
                                              ("bytes_toserver", c.bytes_in), ("bytes_toclient", c.bytes_out))
                    if v is not None]
        flow = [_opt(np.isfinite(v), json_ints(v, f',"{name}":')) for name, v in counters]
        pieces.append(_object("flow", flow + self._times(t, "+0000")))
        pieces.append(self._fs(t, explanations, suppressed))
        return cat_list(*pieces, "}")

    def _eve_alert(self, t: FrameText) -> np.ndarray:
        meta = (f'"model":[{_q(self.config.model_name)}],"model_version":[{_q(self.config.model_version)}],'
                f'"threshold":["{self._threshold}"]')

        def head(cls: str) -> str:
            s = signature(cls)
            return (f',"alert":{{"action":"allowed","gid":{GID},"signature_id":{s.sid},"rev":{self.rev},'
                    f'"signature":{_q(s.name)},"category":{_q(s.category)},"severity":{s.severity},"score":')

        score = json_fixed(t.score)
        return cat(self._by_class(t, head), score,
                   self._by_class(t, lambda c: f',"metadata":{{"class":[{_q(c)}],{meta},"score":["'),
                   score, '"]}}')

    # ---- ECS ------------------------------------------------------------------
    def ecs_lines(self, t: FrameText, idx: np.ndarray | None = None, explanations: np.ndarray | None = None,
                  suppressed: np.ndarray | None = None) -> list[str]:
        """ECS documents (no newline) for rows ``idx`` (default all): ``event.kind: alert`` for unsuppressed alerts."""
        t = t if idx is None else t.take(idx)
        c = t.cols
        as_alert = t.alert & (~suppressed if suppressed is not None else True)
        alert_idx = np.flatnonzero(as_alert)
        flow_event = (',"event":{"kind":"event","category":["network"],"type":["connection"],'
                      '"module":"flowsentinel","dataset":"flowsentinel.flow"')
        event = np.full(t.n, flow_event, dtype=object)
        rule = np.full(t.n, "", dtype=object)
        if len(alert_idx):
            a = t.take(alert_idx)
            event[alert_idx] = cat(
                self._by_class(a, lambda cls: (
                    ',"event":{"kind":"alert","category":["network","intrusion_detection"],"type":["allowed"],'
                    f'"module":"flowsentinel","dataset":"flowsentinel.alert","severity":{signature(cls).severity}')),
                json_fixed(a.score * 100.0, 2, ',"risk_score":'))
            rule[alert_idx] = self._by_class(a, lambda cls: (
                f',"rule":{{"id":"{signature(cls).sid}","name":{_q(signature(cls).name)},'
                f'"category":{_q(signature(cls).category)},"version":"{self.rev}","ruleset":"flowsentinel"}}'))
        pieces = [iso_times(t.when, "Z", '{"@timestamp":"', '"'), f',"ecs":{{"version":"{ECS_VERSION}"}}', event]
        pieces += self._times(t, "Z")
        pieces += ["}", rule]
        for key, addr, port, byt, pkt in (("source", c.src, c.sport, c.bytes_in, c.pkts_in),
                                          ("destination", c.dst, c.dport, c.bytes_out, c.pkts_out)):
            parts = []
            if addr is not None:
                parts.append(_by_value_ip(addr))
            if port is not None:
                parts.append(self._port(t, port, "port"))
            for ecs_name, values in (("bytes", byt), ("packets", pkt)):
                if values is not None:
                    parts.append(_opt(np.isfinite(values), json_ints(values, f',"{ecs_name}":')))
            pieces.append(_object(key, parts))
        pieces.append(_object("network", self._ecs_network(t)))
        observer = f',"observer":{{"hostname":{_q(self.host)},"type":"ids","vendor":"flowsentinel","product":"flowsentinel"'
        if self.config.interface:
            observer += f',"ingress":{{"interface":{{"name":{_q(self.config.interface)}}}}}'
        pieces.append(observer + "}")
        pieces.append(self._fs(t, explanations, suppressed))
        return cat_list(*pieces, "}")

    def _ecs_network(self, t: FrameText) -> list:
        c = t.cols
        parts = []
        if t.proto is not None:
            parts.append(text_by_value(t.proto, "", "", lambda p: (
                f',"transport":"{proto_names(np.array([p]), lower=True)[0]}","iana_number":"{int(p)}"')))
        if t.community_id is not None:
            parts.append(self._text(t.community_id, "community_id"))
        if t.app_proto is not None:
            parts.append(self._text(t.app_proto, "protocol"))
        for ecs_name, a, b in (("bytes", c.bytes_in, c.bytes_out), ("packets", c.pkts_in, c.pkts_out)):
            if a is not None and b is not None:
                total = a + b
                parts.append(_opt(np.isfinite(total), json_ints(total, f',"{ecs_name}":')))
        return parts

    # ---- follow-ups -----------------------------------------------------------
    def aggregate_record(self, agg: Aggregate, fmt: str) -> str:
        """The follow-up record of one suppression window, as an EVE alert or an ECS document."""
        s = signature(agg.cls)
        last = agg.last_ms if np.isfinite(agg.last_ms) else agg.window_start_ms
        dests = sorted(str(d) for d in agg.destinations if d is not None)
        ports = sorted(int(p) for p in agg.dest_ports if p is not None)
        zone = "Z" if fmt == "ecs" else "+0000"
        first, last_text, start = iso_times(np.array([agg.first_ms, last, agg.window_start_ms]), zone).tolist()
        summary = {
            "count": agg.count,
            "first": first,
            "last": last_text,
            "window_s": agg.window_s,
            "window_start": start,
            "first_alert_flow_id": agg.first_alert_flow_id,
            "n_destinations": len(dests),
            "destinations": dests,
            "n_dest_ports": len(ports),
            "dest_ports": ports,
            "truncated": agg.truncated,
        }
        if agg.by_destination:
            # Folded by victim: the sources are what varies.
            dests = [str(agg.destination)] if agg.destination is not None else []
            sources = sorted(str(x) for x in agg.sources if x is not None)
            summary.update({"by": "destination", "n_destinations": len(dests), "destinations": dests,
                            "n_sources": len(sources), "sources": sources})
        fs = {"class": agg.cls, "score": round(agg.max_score, 6), "alert": True, "aggregate": summary,
              "threshold": self.config.threshold, "model": self.config.model_name,
              "model_version": self.config.model_version}
        source = agg.source if agg.source is not None and not (isinstance(agg.source, float) and np.isnan(agg.source)) else None
        if fmt == "ecs":
            doc = {"@timestamp": summary["last"], "ecs": {"version": ECS_VERSION},
                   "event": {"kind": "alert", "category": ["network", "intrusion_detection"], "type": ["allowed"],
                             "module": "flowsentinel", "dataset": "flowsentinel.alert", "severity": s.severity,
                             "count": agg.count, "start": summary["first"], "end": summary["last"]},
                   "rule": {"id": str(s.sid), "name": s.name, "category": s.category, "version": str(self.rev),
                            "ruleset": "flowsentinel"},
                   "observer": {"hostname": self.host, "type": "ids", "vendor": "flowsentinel", "product": "flowsentinel"},
                   "flowsentinel": fs}
            if source is not None:
                doc["source"] = {"ip": str(source), "address": str(source)}
            if len(dests) == 1:
                doc["destination"] = {"ip": dests[0], "address": dests[0]}
            return json.dumps(doc, separators=(",", ":"))
        rec = {"timestamp": summary["last"], "event_type": "alert"}
        if self.config.interface:
            rec["in_iface"] = self.config.interface
        if source is not None:
            rec["src_ip"] = str(source)
        if len(dests) == 1:
            rec["dest_ip"] = dests[0]
        rec["host"] = self.host
        rec["alert"] = {"action": "allowed", "gid": GID, "signature_id": s.sid, "rev": self.rev,
                        "signature": s.name, "category": s.category, "severity": s.severity,
                        "score": round(agg.max_score, 6), "metadata": {"class": [agg.cls], "model": [self.config.model_name],
                                     "model_version": [self.config.model_version], "aggregate": ["true"],
                                     "count": [str(agg.count)]}}
        rec["flowsentinel"] = fs
        return json.dumps(rec, separators=(",", ":"))


def _by_value_ip(addr: np.ndarray) -> np.ndarray:
    """ECS ``source``/``destination`` ``ip`` and ``address`` pieces (left out where there is no address)."""
    return text_by_value(addr, "", "", lambda v: f',"ip":{_q(str(v))},"address":{_q(str(v))}')
