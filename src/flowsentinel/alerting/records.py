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
>>> rec = json.loads(b.eve_lines(text, np.array([0]))[0])
>>> rec["timestamp"], rec["event_type"], rec["app_proto"], rec["alert"]["signature_id"], rec["flow"]["bytes_toclient"]
('2017-07-14T02:40:00.020000+0000', 'alert', 'http', 1717011, 120)
>>> doc = json.loads(b.ecs_lines(text, np.array([0]))[0])
>>> doc["event"]["kind"], doc["event"]["category"], doc["network"]["community_id"] == rec["community_id"]
('alert', ['network', 'intrusion_detection'], True)
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .fields import STRING, FlowColumns, cat, flow_ids, iso_times, json_fixed, json_ints, json_strings, proto_names
from .signatures import GID, rule_rev, signature
from .suppress import Aggregate

__all__ = ["RecordConfig", "RecordBuilder", "FrameText", "ECS_VERSION"]

#: The ECS version the documents follow.
ECS_VERSION = "8.11.0"


def _q(value) -> str:
    return json.dumps(value)


def _opt(mask: np.ndarray, text) -> np.ndarray:
    """``text`` where ``mask`` holds, else the empty string (a key left out)."""
    return np.where(mask, text, "").astype(STRING)


def _object(key: str, pieces: list) -> np.ndarray | str:
    """``,"key":{...}`` from pieces that each start with a comma; left out where every piece is empty."""
    if not pieces:
        return ""
    body = cat(*pieces)
    inner = np.strings.lstrip(body, ",")
    return _opt(np.strings.str_len(body) > 0, cat(f',"{key}":{{', inner, "}"))


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
    """One frame's fields as JSON fragments, ready to be assembled into records."""

    n: int
    ts: np.ndarray
    ts_ecs: np.ndarray
    from_clock: np.ndarray
    flow_id: np.ndarray
    src: np.ndarray | None
    dst: np.ndarray | None
    sport: np.ndarray | None
    dport: np.ndarray | None
    is_icmp: np.ndarray
    icmp_type: np.ndarray | None
    icmp_code: np.ndarray | None
    proto: np.ndarray | None
    proto_text: np.ndarray | None
    community_id: np.ndarray | None
    app_proto: np.ndarray | None
    counters: dict
    start: np.ndarray | None
    end: np.ndarray | None
    score: np.ndarray
    score_value: np.ndarray
    class_code: np.ndarray
    classes: list
    row: np.ndarray
    alert: np.ndarray
    true_class: np.ndarray | None
    absent: list

    def take(self, idx: np.ndarray) -> "FrameText":
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, np.ndarray):
                out[k] = v[idx]
            elif k == "counters":
                out[k] = {name: values[idx] for name, values in v.items()}
            else:
                out[k] = v
        out["n"] = len(idx)
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
        n = cols.n
        when, from_clock = cols.event_ms(clock_ms)
        absent = []

        def ints(values):
            return None if values is None else json_ints(values)

        src = None if cols.src is None else json_strings(cols.src)
        dst = None if cols.dst is None else json_strings(cols.dst)
        if src is None:
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
        counters = {}
        for name, values in (("pkts_toserver", cols.pkts_in), ("pkts_toclient", cols.pkts_out),
                             ("bytes_toserver", cols.bytes_in), ("bytes_toclient", cols.bytes_out)):
            if values is None:
                absent.append(f"flow.{name}")
            else:
                counters[name] = np.asarray(values, dtype="float64")
        start = end = None
        for name, values in (("start", cols.start_ms), ("end", cols.end_ms)):
            if values is None:
                absent.append(f"flow.{name}")
                continue
            ok = np.isfinite(values) & (values > 0)
            text = _opt(ok, cat('"', iso_times(np.where(ok, values, 0.0)), '"'))
            if name == "start":
                start = text
            else:
                end = text
        codes, uniques = pd.factorize(pd.Series(np.asarray(classes, dtype=object)).astype(str))
        return FrameText(
            n=n,
            ts=iso_times(when, "+0000"),
            ts_ecs=iso_times(when, "Z"),
            from_clock=from_clock,
            flow_id=flow_ids(cols, rows),
            src=src,
            dst=dst,
            sport=ints(cols.sport),
            dport=ints(cols.dport),
            is_icmp=cols.is_icmp,
            icmp_type=ints(cols.icmp_type),
            icmp_code=ints(cols.icmp_code),
            proto=None if cols.proto is None else np.nan_to_num(cols.proto).astype(np.int64),
            proto_text=None if cols.proto is None else proto_names(np.nan_to_num(cols.proto)),
            community_id=cid,
            app_proto=app,
            counters=counters,
            start=start,
            end=end,
            score=json_fixed(scores),
            score_value=np.asarray(scores, dtype="float64"),
            class_code=codes,
            classes=list(uniques),
            row=json_ints(rows),
            alert=np.asarray(alerts, dtype=bool),
            true_class=None if true_classes is None else json_strings(true_classes),
            absent=absent,
        )

    # ---- pieces shared by both formats ----------------------------------------
    def _by_class(self, t: FrameText, make) -> np.ndarray:
        table = np.asarray([make(c) for c in t.classes] or [""], dtype=STRING)
        return table[t.class_code]

    def _fs(self, t: FrameText, explanations: np.ndarray | None, suppressed: np.ndarray | None) -> np.ndarray:
        """The ``flowsentinel`` object: class, score, verdict and what the record lacks."""
        pieces = [
            ',"flowsentinel":{"class":', self._by_class(t, _q), ',"score":', t.score,
            np.where(t.alert, ',"alert":true', ',"alert":false').astype(STRING),
            ',"threshold":', self._threshold, ',"row":', t.row,
            f',"model":{_q(self.config.model_name)},"model_version":{_q(self.config.model_version)}',
        ]
        if t.true_class is not None:
            pieces += [',"true_class":', t.true_class]
        if suppressed is not None:
            pieces.append(_opt(suppressed, ',"suppressed":true'))
        if t.from_clock.any():
            pieces.append(_opt(t.from_clock, ',"time_source":"clock"'))
        if t.absent:
            pieces.append(f',"absent":{json.dumps(t.absent, separators=(",", ":"))}')
        if explanations is not None:
            pieces.append(np.where(pd.isna(explanations), "", explanations).astype(STRING))
        return cat(*pieces, "}")

    def _endpoint(self, t: FrameText, addr, port, with_icmp: bool, ip_key: str, port_key: str) -> list:
        pieces = []
        if addr is not None:
            pieces.append(_opt(addr != "null", cat(f',"{ip_key}":', addr)))
        if port is not None:
            pieces.append(_opt(~t.is_icmp, cat(f',"{port_key}":', port)) if with_icmp else cat(f',"{port_key}":', port))
        return pieces

    # ---- EVE ------------------------------------------------------------------
    def eve_lines(self, t: FrameText, idx: np.ndarray, explanations: np.ndarray | None = None,
                  suppressed: np.ndarray | None = None) -> np.ndarray:
        """EVE lines (no newline) for rows ``idx`` of ``t``: ``alert`` where the row is one and not suppressed."""
        t = t.take(idx)
        as_alert = t.alert & (~suppressed if suppressed is not None else True)
        pieces = ['{"timestamp":"', t.ts, '","flow_id":', json_ints(t.flow_id)]
        if self.config.interface:
            pieces.append(f',"in_iface":{_q(self.config.interface)}')
        pieces.append(np.where(as_alert, ',"event_type":"alert"', ',"event_type":"flow"').astype(STRING))
        pieces += self._endpoint(t, t.src, t.sport, True, "src_ip", "src_port")
        pieces += self._endpoint(t, t.dst, t.dport, True, "dest_ip", "dest_port")
        if t.proto_text is not None:
            pieces += [',"proto":"', t.proto_text, '"']
        if t.icmp_type is not None:
            pieces.append(_opt(t.is_icmp, cat(',"icmp_type":', t.icmp_type, ',"icmp_code":', t.icmp_code)))
        if t.community_id is not None:
            pieces.append(_opt(pd.notna(t.community_id), cat(',"community_id":"', t.community_id.astype(str), '"')))
        pieces.append(f',"host":{_q(self.host)}')
        if t.app_proto is not None:
            known = pd.notna(t.app_proto)
            pieces.append(_opt(known, cat(',"app_proto":"', np.where(known, t.app_proto, "").astype(str), '"')))
        if as_alert.any():
            pieces.append(_opt(as_alert, self._eve_alert(t)))
        pieces.append(self._eve_flow(t))
        pieces.append(self._fs(t, explanations, suppressed))
        return cat(*pieces, "}")

    def _eve_alert(self, t: FrameText) -> np.ndarray:
        meta = (f'"model":[{_q(self.config.model_name)}],"model_version":[{_q(self.config.model_version)}],'
                f'"threshold":["{self._threshold}"]')

        def head(cls: str) -> str:
            s = signature(cls)
            return (f',"alert":{{"action":"allowed","gid":{GID},"signature_id":{s.sid},"rev":{self.rev},'
                    f'"signature":{_q(s.name)},"category":{_q(s.category)},"severity":{s.severity},"score":')

        return cat(self._by_class(t, head), t.score,
                   self._by_class(t, lambda c: f',"metadata":{{"class":[{_q(c)}],{meta},"score":["'),
                   t.score, '"]}}')

    def _eve_flow(self, t: FrameText):
        pieces = [_opt(np.isfinite(v), cat(f',"{name}":', json_ints(v))) for name, v in t.counters.items()]
        for name, text in (("start", t.start), ("end", t.end)):
            if text is not None:
                pieces.append(_opt(np.strings.str_len(text) > 0, cat(f',"{name}":', text)))
        return _object("flow", pieces)

    # ---- ECS ------------------------------------------------------------------
    def ecs_lines(self, t: FrameText, idx: np.ndarray, explanations: np.ndarray | None = None,
                  suppressed: np.ndarray | None = None) -> np.ndarray:
        """ECS documents (no newline) for rows ``idx``: ``event.kind: alert`` for unsuppressed alerts."""
        t = t.take(idx)
        as_alert = t.alert & (~suppressed if suppressed is not None else True)
        event = np.where(
            as_alert,
            ',"event":{"kind":"alert","category":["network","intrusion_detection"],"type":["allowed"],'
            '"module":"flowsentinel","dataset":"flowsentinel.alert"',
            ',"event":{"kind":"event","category":["network"],"type":["connection"],'
            '"module":"flowsentinel","dataset":"flowsentinel.flow"').astype(STRING)
        severity = self._by_class(t, lambda c: f',"severity":{signature(c).severity}')
        pieces = ['{"@timestamp":"', t.ts_ecs, f'","ecs":{{"version":"{ECS_VERSION}"}}', event,
                  _opt(as_alert, severity), _opt(as_alert, cat(',"risk_score":', json_fixed(t.score_value * 100.0, 2)))]
        for name, text in (("start", t.start), ("end", t.end)):
            if text is not None:
                pieces.append(_opt(np.strings.str_len(text) > 0, cat(f',"{name}":', np.strings.replace(text, "+0000", "Z"))))
        pieces.append("}")
        if as_alert.any():
            rule = self._by_class(t, lambda c: (
                f',"rule":{{"id":"{signature(c).sid}","name":{_q(signature(c).name)},'
                f'"category":{_q(signature(c).category)},"version":"{self.rev}","ruleset":"flowsentinel"}}'))
            pieces.append(_opt(as_alert, rule))
        for key, addr, port, byt, pkt in (("source", t.src, t.sport, "bytes_toserver", "pkts_toserver"),
                                          ("destination", t.dst, t.dport, "bytes_toclient", "pkts_toclient")):
            parts = []
            if addr is not None:
                parts.append(_opt(addr != "null", cat(',"ip":', addr, ',"address":', addr)))
            if port is not None:
                parts.append(_opt(~t.is_icmp, cat(',"port":', port)))
            for ecs_name, name in (("bytes", byt), ("packets", pkt)):
                if name in t.counters:
                    values = t.counters[name]
                    parts.append(_opt(np.isfinite(values), cat(f',"{ecs_name}":', json_ints(values))))
            pieces.append(_object(key, parts))
        pieces.append(_object("network", self._ecs_network(t)))
        observer = f',"observer":{{"hostname":{_q(self.host)},"type":"ids","vendor":"flowsentinel","product":"flowsentinel"'
        if self.config.interface:
            observer += f',"ingress":{{"interface":{{"name":{_q(self.config.interface)}}}}}'
        pieces.append(observer + "}")
        pieces.append(self._fs(t, explanations, suppressed))
        return cat(*pieces, "}")

    def _ecs_network(self, t: FrameText) -> list:
        parts = []
        if t.proto is not None:
            parts.append(cat(',"transport":"', np.strings.lower(t.proto_text), '","iana_number":"',
                             t.proto.astype(STRING), '"'))
        if t.community_id is not None:
            parts.append(_opt(pd.notna(t.community_id), cat(',"community_id":"', t.community_id.astype(str), '"')))
        if t.app_proto is not None:
            known = pd.notna(t.app_proto)
            parts.append(_opt(known, cat(',"protocol":"', np.where(known, t.app_proto, "").astype(str), '"')))
        for ecs_name, a, b in (("bytes", "bytes_toserver", "bytes_toclient"), ("packets", "pkts_toserver", "pkts_toclient")):
            if a in t.counters and b in t.counters:
                total = t.counters[a] + t.counters[b]
                parts.append(_opt(np.isfinite(total), cat(f',"{ecs_name}":', json_ints(total))))
        return parts

    # ---- follow-ups -----------------------------------------------------------
    def aggregate_record(self, agg: Aggregate, fmt: str) -> str:
        """The follow-up record of one suppression window, as an EVE alert or an ECS document."""
        s = signature(agg.cls)
        last = agg.last_ms if np.isfinite(agg.last_ms) else agg.window_start_ms
        dests = sorted(str(d) for d in agg.destinations if d is not None)
        ports = sorted(int(p) for p in agg.dest_ports if p is not None)
        summary = {
            "count": agg.count,
            "first": iso_times(np.array([agg.first_ms]), "+0000" if fmt != "ecs" else "Z")[0],
            "last": iso_times(np.array([last]), "+0000" if fmt != "ecs" else "Z")[0],
            "window_s": agg.window_s,
            "window_start": iso_times(np.array([agg.window_start_ms]), "+0000" if fmt != "ecs" else "Z")[0],
            "first_alert_flow_id": agg.first_alert_flow_id,
            "n_destinations": len(dests),
            "destinations": dests,
            "n_dest_ports": len(ports),
            "dest_ports": ports,
            "truncated": agg.truncated,
        }
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
