"""nfdump's files as NF flow frames: nfcapd archives (through ``nfdump``) and ``nfdump -o csv`` output.

An nfcapd file is nfdump's binary format; it is read by running
``nfdump -r FILE -o json`` (nfdump itself, so every record version nfcapd
writes is understood) and parsing the records as they stream. A CSV file
that ``nfdump -o csv`` wrote is read directly; its times have whole seconds
only (nfdump's CSV has no milliseconds), taken as UTC, and the end time is
the start plus the ``td`` duration.

Each record becomes the same columns a collected record does, and goes
through the same normalization and stitching
(:mod:`~flowsentinel.collector.flows`, :mod:`~flowsentinel.collector.stitch`),
so the one-way records an exporter sent are scored as bidirectional NF
flows. nfdump stores a time it did not receive as 0 (nfdump 1.7.1 does so
for an uptime of 0 too); such a record takes its other time for both.

>>> flags_value("...AP.S."), flags_value("........")
(26, 0)
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import json
import logging
import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from ..errors import FlowReadError
from .flows import normalize, to_frames
from .records import IPV4_MAPPED, RecordBatch
from .sniff import NFDUMP_CSV_HEADER, NFDUMP_MAGIC, is_nfcapd_file, is_nfdump_csv
from .stitch import Stitcher
from .templates import Domain

__all__ = ["NFDUMP_MAGIC", "is_nfcapd_file", "is_nfdump_csv", "nfdump_json_records", "read_nfdump",
           "flags_value", "NFDUMP_CSV_HEADER"]

log = logging.getLogger(__name__)

# nfdump writes TCP flags as eight characters, CWR first: "CEUAPRSF", '.' for a clear bit.
_FLAG_CHARS = 8
_PROTOCOL_NAMES = {"ICMP": 1, "IGMP": 2, "TCP": 6, "UDP": 17, "GRE": 47, "ESP": 50, "AH": 51, "ICMP6": 58,
                   "IPV6-ICMP": 58, "SCTP": 132}
_CHUNK = 100_000


def flags_value(text: str) -> int:
    """nfdump's flag string (``...AP.S.``) as the TCP flags byte."""
    text = text.strip()
    value = 0
    for i, ch in enumerate(text[-_FLAG_CHARS:].rjust(_FLAG_CHARS, ".")):
        if ch != ".":
            value |= 1 << (_FLAG_CHARS - 1 - i)
    return value


def _ms(text: str) -> int:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(round(when.timestamp() * 1000))


def nfdump_json_records(path: str | os.PathLike, *, nfdump: str = "nfdump", timeout: float | None = None
                        ) -> Iterator[dict]:
    """The flow records of an nfcapd file, as the dicts ``nfdump -o json`` prints (times in UTC)."""
    exe = shutil.which(nfdump)
    if exe is None:
        raise FlowReadError(f"{path}: reading an nfcapd file needs nfdump on PATH (Debian package nfdump)")
    env = dict(os.environ, TZ="UTC")
    proc = subprocess.Popen([exe, "-r", str(path), "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            stripped = line.strip()
            if stripped in ("{", "[{"):
                lines = ["{"]
            elif stripped.startswith("}") and lines:
                lines.append("}")
                record = json.loads("".join(lines))
                lines = []
                if record.get("type") == "FLOW":
                    yield record
            elif lines:
                lines.append(stripped)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode:
        raise FlowReadError(f"{path}: nfdump -r failed (exit {proc.returncode}): {err.strip()[:300]}")


def _address(records: list[dict], v4: str, v6: str) -> tuple[np.ndarray, np.ndarray]:
    hi = np.zeros(len(records), dtype="uint64")
    lo = np.zeros(len(records), dtype="uint64")
    for i, r in enumerate(records):
        text = r.get(v4) or r.get(v6) or "0.0.0.0"
        value = int(ipaddress.ip_address(text))
        if v4 in r:
            lo[i] = np.uint64(value) | IPV4_MAPPED
        else:
            hi[i], lo[i] = np.uint64(value >> 64), np.uint64(value & 0xFFFFFFFFFFFFFFFF)
    return hi, lo


def json_columns(records: list[dict]) -> dict[str, np.ndarray]:
    """``nfdump -o json`` records as collector record columns (what a template's slots would fill)."""
    def ints(key, default=0):
        return np.array([int(r.get(key, default)) for r in records], dtype="int64")

    proto = ints("proto")
    icmp = np.isin(proto, (1, 58))
    cols: dict[str, np.ndarray] = {
        "PROTOCOL": proto,
        "L4_SRC_PORT": np.where(icmp, 0, ints("src_port")),
        "L4_DST_PORT": np.where(icmp, 0, ints("dst_port")),
        "ICMP_TYPE": np.where(icmp, ints("icmp_type") * 256 + ints("icmp_code"), 0),
        "TCP_FLAGS": np.array([flags_value(r.get("tcp_flags", "")) for r in records], dtype="int64"),
        "IN_PKTS": ints("in_packets"),
        "IN_BYTES": ints("in_bytes"),
    }
    first = np.array([_ms(r["first"]) for r in records], dtype="int64")
    last = np.array([_ms(r["last"]) for r in records], dtype="int64")
    # nfdump stores 0 for a time it did not get (or for an uptime of 0): take the record's other time.
    cols["FLOW_START_MILLISECONDS"] = np.where(first == 0, last, first)
    cols["FLOW_END_MILLISECONDS"] = np.where(last == 0, first, last)
    if any("out_packets" in r or "out_bytes" in r for r in records):
        cols["OUT_PKTS"] = ints("out_packets")
        cols["OUT_BYTES"] = ints("out_bytes")
    cols["_SRC_HI"], cols["_SRC_LO"] = _address(records, "src4_addr", "src6_addr")
    cols["_DST_HI"], cols["_DST_LO"] = _address(records, "dst4_addr", "dst6_addr")
    return cols


def _csv_records(path: str | os.PathLike) -> Iterator[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for line_no, row in enumerate(reader, start=2):
            if not row or row[0].startswith("Summary"):
                break
            rec = dict(zip(header, (v.strip() for v in row)))
            try:
                proto = rec["pr"]
                proto_num = int(proto) if proto.isdigit() else _PROTOCOL_NAMES[proto.upper()]
                start = _ms(rec["ts"].replace(" ", "T"))
                dport = int(float(rec["dp"]))
                out = {
                    "proto": proto_num, "first": None, "src_port": int(float(rec["sp"])), "dst_port": dport,
                    "tcp_flags": rec["flg"], "in_packets": int(rec["ipkt"]), "in_bytes": int(rec["ibyt"]),
                    "_start": start, "_end": start + int(round(float(rec["td"]) * 1000)),
                }
                opkt, obyt = int(rec.get("opkt") or 0), int(rec.get("obyt") or 0)
            except (KeyError, ValueError) as exc:
                raise FlowReadError(f"{path}, line {line_no}: not an nfdump -o csv record ({exc})") from None
            if opkt or obyt:
                out["out_packets"], out["out_bytes"] = opkt, obyt
            if proto_num in (1, 58):
                out["icmp_type"], out["icmp_code"] = dport >> 8, dport & 0xFF
            key = "4" if ":" not in rec["sa"] else "6"
            out[f"src{key}_addr"], out[f"dst{key}_addr"] = rec["sa"], rec["da"]
            out["ip4_router"] = rec.get("ra", "")
            yield out


def _csv_columns(records: list[dict]) -> dict[str, np.ndarray]:
    for r in records:
        r["first"] = r["last"] = "1970-01-01T00:00:00"
    cols = json_columns(records)
    cols["FLOW_START_MILLISECONDS"] = np.array([r["_start"] for r in records], dtype="int64")
    cols["FLOW_END_MILLISECONDS"] = np.array([r["_end"] for r in records], dtype="int64")
    return cols


def _batches(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for r in records:
        batch.append(r)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_nfdump(path: str | os.PathLike, *, chunk_records: int = _CHUNK, stitch_gap_ms: int = 2000
                ) -> Iterator[pd.DataFrame]:
    """NF flow frames from an nfcapd file or an ``nfdump -o csv`` file, one-way records stitched."""
    path = Path(path)
    if is_nfcapd_file(path):
        records, to_columns = nfdump_json_records(path), json_columns
    elif is_nfdump_csv(path):
        records, to_columns = _csv_records(path), _csv_columns
    else:
        raise FlowReadError(f"{path}: neither an nfcapd file nor nfdump -o csv output")
    # Arrival is the chunk number: a record unmatched in its chunk waits one more chunk for its partner.
    stitcher = Stitcher(wait_s=1.0, gap_ms=stitch_gap_ms)
    domains: dict[str, Domain] = {}
    n = 0
    for k, batch in enumerate(_batches(records, chunk_records)):
        n += len(batch)
        groups: dict[tuple[str, bool], list[dict]] = {}
        for r in batch:
            router = r.get("ip4_router") or r.get("ip6_router") or ""
            groups.setdefault((router, "out_packets" in r or "out_bytes" in r), []).append(r)
        one_way, ready = [], []
        for (router, _), recs in groups.items():
            dom = domains.setdefault(router, Domain(router, 0, 0, index=len(domains)))
            cols, is_one_way = normalize(RecordBatch(None, dom, to_columns(recs), np.full(len(recs), float(k))))
            (one_way if is_one_way else ready).append(cols)
        stitched, _ = stitcher.push(one_way, now=float(k))
        yield from _frames(ready + stitched)
    stitched, _ = stitcher.push([], now=float("inf"), drain=True)
    yield from _frames(stitched)
    log.info("%s: %d nfdump records read", path, n)


def _frames(parts: list[dict[str, np.ndarray]]) -> Iterator[pd.DataFrame]:
    for frame, _ in to_frames(parts):
        yield frame
