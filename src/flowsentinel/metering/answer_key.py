"""Read nDPI's ``ndpiReader`` flow listings and compare metered flows with them.

nDPI's regression captures ship with the per-flow output of its own reader
(``<capture>.ndpiReader.out``): the flow's endpoints, its protocol as
``master.app``, and packets and bytes per direction. That is an independent
answer key for the meter's flow grouping, direction counters and L7
numbering. ndpiReader counts bytes as captured on the wire, link-layer header
included; the meter's ``IN_BYTES``/``OUT_BYTES`` are IP-layer bytes as nProbe
counts them, so comparisons use the meter's ``IN_L2_BYTES``/``OUT_L2_BYTES``.

>>> line = ("\\t1\\tUDP 10.0.0.1:5353 <-> 10.0.0.2:53 [VLAN: 7][proto: 5.126/DNS.Google]"
...         "[cat: Network/14][2 pkts/151 bytes <-> 1 pkts/75 bytes][0.1 sec]")
>>> f = parse_answer_key_lines([line])[0]
>>> (f.protocol, f.src, f.dst, f.l7, f.src_pkts, f.src_bytes, f.dst_pkts, f.dst_bytes)
('UDP', ('10.0.0.1', 5353), ('10.0.0.2', 53), '5.126', 2, 151, 1, 75)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd

__all__ = ["AnswerFlow", "compare_with_answer_key", "parse_answer_key", "parse_answer_key_lines"]

_FLOW_LINE = re.compile(
    r"^\s+\d+\s+(?P<proto>\S+)\s+(?P<src>\S+)\s+(?P<arrow><->|->)\s+(?P<dst>\S+)\s+(?P<rest>\[.*)$"
)
_L7 = re.compile(r"\[proto: (?P<l7>[\d.]+)/(?P<name>[^\]]*)\]")
_COUNTS = re.compile(r"\[(?P<sp>\d+) pkts/(?P<sb>\d+) bytes (?:<->|->) (?P<dp>\d+) pkts/(?P<db>\d+) bytes\]")
_IP_PROTOCOLS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "IGMP": 2, "SCTP": 132}


@dataclass(frozen=True)
class AnswerFlow:
    """One flow as ndpiReader lists it (``src`` is the side it lists first)."""

    protocol: str
    src: tuple[str, int]
    dst: tuple[str, int]
    l7: str
    l7_name: str
    src_pkts: int
    src_bytes: int
    dst_pkts: int
    dst_bytes: int

    @property
    def key(self) -> tuple:
        return (_IP_PROTOCOLS.get(self.protocol.upper(), self.protocol), frozenset((self.src, self.dst)))


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def parse_answer_key_lines(lines: Iterable[str]) -> list[AnswerFlow]:
    flows = []
    for line in lines:
        m = _FLOW_LINE.match(line)
        if not m:
            continue
        l7, counts = _L7.search(m["rest"]), _COUNTS.search(m["rest"])
        if not (l7 and counts):
            continue
        flows.append(
            AnswerFlow(
                protocol=m["proto"],
                src=_endpoint(m["src"]),
                dst=_endpoint(m["dst"]),
                l7=l7["l7"],
                l7_name=l7["name"],
                src_pkts=int(counts["sp"]),
                src_bytes=int(counts["sb"]),
                dst_pkts=int(counts["dp"]),
                dst_bytes=int(counts["db"]),
            )
        )
    return flows


def parse_answer_key(path: str | Path) -> list[AnswerFlow]:
    """The flows listed in an ``.ndpiReader.out`` file (detected and undetected)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_answer_key_lines(fh)


def _l7_text(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def compare_with_answer_key(flows: pd.DataFrame, answer: list[AnswerFlow]) -> dict:
    """Match metered flows to answer-key flows by protocol and endpoint pair.

    ``flows`` needs the NF address/port/protocol columns, ``L7_PROTO``, the
    packet counters and ``IN_L2_BYTES``/``OUT_L2_BYTES``. Returns counts and,
    per answer-key flow that does not agree, what differs (``missing``,
    ``split`` when the meter made several flows of it, ``counts``, ``l7``).
    """
    metered: dict[tuple, list[dict]] = {}
    for rec in flows.to_dict("records"):
        src = (rec["IPV4_SRC_ADDR"], int(rec["L4_SRC_PORT"]))
        dst = (rec["IPV4_DST_ADDR"], int(rec["L4_DST_PORT"]))
        metered.setdefault((int(rec["PROTOCOL"]), frozenset((src, dst))), []).append(rec)
    result = {"answer_flows": len(answer), "metered_flows": len(flows), "counts_agree": 0, "l7_agree": 0, "differences": []}
    for a in answer:
        name = f"{a.protocol} {a.src[0]}:{a.src[1]} <-> {a.dst[0]}:{a.dst[1]}"
        found = metered.get(a.key, [])
        if not found:
            result["differences"].append({"flow": name, "what": "missing"})
            continue
        if len(found) > 1:
            result["differences"].append({"flow": name, "what": "split", "metered_flows": len(found)})
            continue
        rec = found[0]
        same_side = (rec["IPV4_SRC_ADDR"], int(rec["L4_SRC_PORT"])) == a.src
        fwd = (rec["IN_PKTS"], rec["IN_L2_BYTES"], rec["OUT_PKTS"], rec["OUT_L2_BYTES"])
        got = fwd if same_side else (fwd[2], fwd[3], fwd[0], fwd[1])
        want = (a.src_pkts, a.src_bytes, a.dst_pkts, a.dst_bytes)
        if tuple(int(x) for x in got) == want:
            result["counts_agree"] += 1
        else:
            result["differences"].append(
                {"flow": name, "what": "counts", "answer": list(want), "metered": [int(x) for x in got]}
            )
        l7 = _l7_text(rec["L7_PROTO"])
        if l7 == a.l7:
            result["l7_agree"] += 1
        else:
            result["differences"].append({"flow": name, "what": "l7", "answer": f"{a.l7}/{a.l7_name}", "metered": l7})
    return result


#: Settings the golden files are made with (nothing but the defaults plus the
#: link-layer byte counts the answer key needs).
GOLDEN_CONFIG_FIELDS = {"link_layer_bytes": True}


def golden_record(capture: Path, data_root: Path) -> dict:
    """What the golden file of one capture holds: the counters, every metered
    flow (sorted), and the comparison with the nDPI answer key when there is one.
    """
    from .config import MeterConfig
    from .meter import meter_capture

    run = meter_capture(capture, MeterConfig(**GOLDEN_CONFIG_FIELDS))
    df = run.to_pandas()
    order = ["FLOW_START_MILLISECONDS", "IPV4_SRC_ADDR", "L4_SRC_PORT", "IPV4_DST_ADDR", "L4_DST_PORT", "PROTOCOL"]
    df = df.sort_values(order, kind="stable").reset_index(drop=True)
    stats = run.stats.as_dict()
    record = {
        "capture": capture.relative_to(data_root).as_posix(),
        "config": GOLDEN_CONFIG_FIELDS,
        "stats": {k: stats[k] for k in ("packets_seen", "packets_metered", "packets_ignored", "flows", "truncated")},
    }
    key = capture.with_name(capture.name + ".ndpiReader.out")
    if key.exists():
        record["answer_key"] = compare_with_answer_key(df, parse_answer_key(key))
    record["columns"] = list(df.columns)
    record["flows"] = [[_plain(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return record


def _plain(value):
    """numpy scalars to JSON-ready Python values."""
    return value.item() if hasattr(value, "item") else value
