"""Decoded chunks to columns: one numpy array per column, whole batches at a time.

:func:`records_from_chunks` groups the chunks of a batch by template,
concatenates their structured arrays and reads every slot once per group,
so the cost per record is a few numpy operations, not Python calls. The
result is a :class:`RecordBatch` per template: the columns the template
fills (NF names, ``_REV:`` reverse values, ``_`` working values), the
domain it came from and the arrival time of every record.

Times become Unix milliseconds here:

* ``milliseconds``/``seconds``: as sent; ``ntp``: RFC 7011's NTP format
  (seconds since 1900 and a binary fraction);
* ``delta_us``: microseconds before the message's export time;
* ``uptime``: milliseconds since the exporter booted. In NetFlow v5/v9 the
  header's ``sysUpTime`` is the uptime at export, so a time is
  ``export - (sysUpTime - value)``, with the difference taken modulo 2**32
  as a signed number. In IPFIX the boot time is the domain's
  ``systemInitTimeMilliseconds`` options value; until one has arrived, the
  flow is taken to end at the export time.

Addresses become two unsigned 64-bit halves (``_SRC_HI``/``_SRC_LO``, the
same for ``_DST``), IPv4 as IPv4-mapped IPv6, so both families share one
comparable key; they are written as text only when a flow frame is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .elements import REVERSE_PREFIX
from .templates import Domain, Template

if TYPE_CHECKING:  # pragma: no cover
    from .decoder import Chunk

__all__ = ["RecordBatch", "records_from_chunks", "apply_options", "template_values", "IPV4_MAPPED",
           "SCALED_COLUMNS"]

#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2_208_988_800
#: ``::ffff:0:0``: the prefix of IPv4-mapped IPv6 addresses, in the low half.
IPV4_MAPPED = np.uint64(0xFFFF << 32)
_INT64_MAX = np.iinfo(np.int64).max
_ADDRESS = {"IPV4_SRC_ADDR": "_SRC", "IPV4_DST_ADDR": "_DST"}
_TIMES = ("FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS")
#: Counters multiplied by the sampling rate.
SCALED_COLUMNS = ("IN_BYTES", "IN_PKTS", "OUT_BYTES", "OUT_PKTS", REVERSE_PREFIX + "IN_BYTES",
                  REVERSE_PREFIX + "IN_PKTS")


@dataclass
class RecordBatch:
    """The records of one template in a batch, as columns."""

    template: Template
    domain: Domain
    columns: dict[str, np.ndarray]
    arrival: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)


def _integers(values: np.ndarray, length: int) -> np.ndarray:
    """Unsigned big-endian integers of any length 1-8 as int64 (values above 2**63 - 1 saturate)."""
    if values.dtype.kind == "V":
        octets = np.frombuffer(values.tobytes(), dtype="u1").reshape(-1, length).astype("uint64")
        out = np.zeros(len(values), dtype="uint64")
        for i in range(length):
            out = (out << np.uint64(8)) | octets[:, i]
        values = out
    if values.dtype == np.uint64:
        return np.minimum(values, np.uint64(_INT64_MAX)).astype("int64")
    return values.astype("int64")


def _ipv6_halves(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    halves = np.frombuffer(values.tobytes(), dtype=">u8").reshape(-1, 2).astype("uint64")
    return halves[:, 0].copy(), halves[:, 1].copy()


def _uptime_v9(values: np.ndarray, export_ms: np.ndarray, uptime: np.ndarray) -> np.ndarray:
    behind = (uptime - values) & 0xFFFFFFFF
    behind = np.where(behind >= 1 << 31, behind - (1 << 32), behind)
    return export_ms - behind


def template_values(template: Template, records: np.ndarray, export_ms: np.ndarray, uptime: np.ndarray,
                    domain: Domain) -> dict[str, np.ndarray]:
    """Every slot of ``template`` read from ``records``, times in Unix milliseconds."""
    cols: dict[str, np.ndarray] = {}
    raw_uptimes: dict[str, np.ndarray] = {}
    for slot in template.slots:
        values = records[slot.name]
        kind = slot.type
        if kind == "ipv4":
            prefix = _ADDRESS.get(slot.column)
            if prefix is None:
                continue
            cols[prefix + "_HI"] = np.zeros(len(values), dtype="uint64")
            cols[prefix + "_LO"] = values.astype("uint64") | IPV4_MAPPED
            continue
        if kind == "ipv6":
            prefix = _ADDRESS.get(slot.column)
            if prefix is None:
                continue
            cols[prefix + "_HI"], cols[prefix + "_LO"] = _ipv6_halves(values)
            continue
        if kind == "ntp":
            # Seconds since 1900 in the high 32 bits: above 2**63 as one number, so split it unsigned.
            wide = values.astype("uint64")
            secs = (wide >> np.uint64(32)).astype("int64")
            frac = (wide & np.uint64(0xFFFFFFFF)).astype("int64")
            cols[slot.column] = (secs - NTP_UNIX_OFFSET) * 1000 + ((frac * 1000) >> 32)
            continue
        ints = _integers(values, slot.length)
        if kind == "flags":
            ints = ints & 0xFF
        elif kind == "seconds":
            ints = ints * 1000
        elif kind == "delta_us":
            ints = export_ms - ints // 1000
        elif kind == "microseconds":
            ints = ints // 1000
        elif kind == "uptime":
            if template.version in (5, 9):
                ints = _uptime_v9(ints, export_ms, uptime)
            elif domain.system_init_ms is not None:
                ints = domain.system_init_ms + ints
            else:
                raw_uptimes[slot.column] = ints
                continue
        cols[slot.column] = ints
    if raw_uptimes:
        # IPFIX uptimes before any systemInitTimeMilliseconds: the flow ends at the export time.
        end = raw_uptimes.get("FLOW_END_MILLISECONDS")
        ref = end if end is not None else next(iter(raw_uptimes.values()))
        for column, ints in raw_uptimes.items():
            cols[column] = export_ms - (ref - ints)
    return cols


def _rates(cols: dict[str, np.ndarray], domain: Domain, n: int) -> np.ndarray | float:
    interval = cols.get("_SAMPLING_PACKET_INTERVAL")
    if interval is not None:
        space = cols.get("_SAMPLING_PACKET_SPACE", np.zeros(n, dtype="int64"))
        return np.where(interval > 0, (interval + space) / np.maximum(interval, 1), 1.0)
    every = cols.get("_SAMPLING_INTERVAL")
    if every is not None:
        return np.where(every > 0, every, 1).astype("float64")
    sampler = cols.get("_SAMPLER_ID")
    if sampler is not None and domain.sampler_rates:
        rates = domain.sampler_rates
        return np.array([rates.get(int(s), domain.sampling_rate) for s in sampler], dtype="float64")
    return domain.sampling_rate


def records_from_chunks(chunks: list["Chunk"], *, apply_sampling: bool = True) -> list[RecordBatch]:
    """The chunks of a batch as one :class:`RecordBatch` per template and domain, in order of first appearance."""
    # Compiled templates are shared between domains: group by both.
    groups: dict[tuple[int, int], list["Chunk"]] = {}
    for chunk in chunks:
        groups.setdefault((id(chunk.template), chunk.domain.index), []).append(chunk)
    out = []
    for group in groups.values():
        first = group[0]
        counts = [len(c.records) for c in group]
        records = group[0].records if len(group) == 1 else np.concatenate([c.records for c in group])
        export_ms = np.repeat(np.array([c.export_ms for c in group], dtype="int64"), counts)
        uptime = np.repeat(np.array([c.uptime_ms for c in group], dtype="int64"), counts)
        arrival = np.repeat(np.array([c.arrival for c in group], dtype="float64"), counts)
        cols = template_values(first.template, records, export_ms, uptime, first.domain)
        if apply_sampling:
            rate = _rates(cols, first.domain, len(records))
            if np.any(np.asarray(rate) != 1.0):
                for name in SCALED_COLUMNS:
                    if name in cols:
                        cols[name] = np.rint(cols[name] * rate).astype("int64")
        out.append(RecordBatch(first.template, first.domain, cols, arrival))
    return out


def apply_options(template: Template, domain: Domain, records: np.ndarray) -> None:
    """Take the clock and sampling rates an options record declares into its domain."""
    zeros = np.zeros(len(records), dtype="int64")
    cols = template_values(template, records, zeros, zeros, domain)
    init = cols.get("_SYSTEM_INIT_MS")
    if init is not None:
        domain.system_init_ms = int(init[-1])
    if not ({"_SAMPLING_INTERVAL", "_SAMPLING_PACKET_INTERVAL"} & cols.keys()):
        return
    rates = _rates(cols, domain, len(records))
    rates = np.broadcast_to(np.asarray(rates, dtype="float64"), (len(records),))
    sampler = cols.get("_SAMPLER_ID")
    for i, rate in enumerate(rates.tolist()):
        rate = max(rate, 1.0)
        if sampler is not None:
            domain.sampler_rates[int(sampler[i])] = rate
        else:
            domain.sampling_rate = rate
