"""Templates: the layout of an exporter's data records, compiled once into a numpy dtype.

A :class:`Template` holds the field specifiers an exporter sent (NetFlow v9
or IPFIX, or the fixed NetFlow v5 record) and compiles them, once, into:

* the **slots**: for each NF column (or working value) the template can
  fill, the one field that fills it (the lowest ``priority`` of the element
  table wins, then the first field);
* a structured **dtype** over those fields, so that a data set of a
  fixed-length template is read with one :func:`numpy.frombuffer` call and
  no per-record Python work. A template with variable-length fields
  (RFC 7011 section 7) is walked record by record into a compact layout of
  the same slots, and then read the same way.

A :class:`Domain` is one exporter's observation domain (IPFIX domain id, v9
source id, v5 engine): its templates with the time each was last refreshed,
its clock (``systemInitTimeMilliseconds``), its sampling rates and the next
sequence number it should send.

>>> t = Template(256, (Field(8, 4), Field(12, 4), Field(1, 4), Field(2, 4), Field(61, 1)), version=9)
>>> sorted(s.column for s in t.slots)
['IN_BYTES', 'IN_PKTS', 'IPV4_DST_ADDR', 'IPV4_SRC_ADDR']
>>> t.record_length, t.varlen, t.dtype.itemsize
(17, False, 17)
>>> rec = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + (1500).to_bytes(4, "big") + (3).to_bytes(4, "big") + b"\\x00"
>>> arr = t.decode(rec * 2, 0, 34)
>>> int(arr["f2"][1]), int(arr["f3"][0])
(1500, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .elements import lookup, lookup_v9

__all__ = ["VARLEN", "Field", "Slot", "Template", "TemplateError", "RecordError", "Domain", "V5_TEMPLATE", "compiled"]

#: Field length that announces a variable-length field (RFC 7011 section 7).
VARLEN = 0xFFFF
#: Types whose value is an unsigned integer of 1 to 8 bytes (reduced-size encoding allowed).
_INTEGER_TYPES = frozenset({"unsigned", "flags", "milliseconds", "seconds", "uptime", "delta_us", "microseconds"})
_NATIVE = {1: "u1", 2: ">u2", 4: ">u4", 8: ">u8"}


class TemplateError(ValueError):
    """A template that cannot describe any record; the message is the counter's reason."""


class RecordError(ValueError):
    """A data set whose records do not fit its template; the message is the counter's reason."""


class Field(NamedTuple):
    """One field specifier: element id (enterprise bit removed), length, enterprise number."""

    id: int
    length: int
    pen: int = 0


@dataclass(frozen=True)
class Slot:
    """The field of a template that fills one column, and how to read it."""

    column: str
    type: str
    length: int
    name: str


def _format(type_: str, length: int) -> str | None:
    if type_ in _INTEGER_TYPES:
        if length in _NATIVE:
            return _NATIVE[length]
        return f"V{length}" if 0 < length < 8 else None
    if type_ == "ipv4":
        return ">u4" if length == 4 else None
    if type_ == "ipv6":
        return "V16" if length == 16 else None
    if type_ == "ntp":
        return ">u8" if length == 8 else None
    return None


class Template:
    """A data or options template, compiled for decoding.

    ``version`` is 5, 9 or 10 (IPFIX); it decides how field types are looked
    up (v9 numbers nProbe's elements 57472 + id) and how uptimes are read.
    ``scope_count`` > 0 makes it an options template.
    """

    def __init__(self, template_id: int, fields: tuple[Field, ...], *, version: int, scope_count: int = 0):
        self.template_id = template_id
        self.fields = tuple(fields)
        self.version = version
        self.scope_count = scope_count
        self.is_options = scope_count > 0
        self.varlen = any(f.length == VARLEN for f in self.fields)
        if not self.fields:
            raise TemplateError("template_empty")
        if any(f.length == 0 for f in self.fields):
            raise TemplateError("template_field_length")
        fixed = sum(f.length for f in self.fields if f.length != VARLEN)
        # A data record travels inside one UDP datagram: 65,507 bytes of payload at most.
        if fixed > 65_507:
            raise TemplateError("template_absurd")
        self.record_length = fixed + sum(1 for f in self.fields if f.length == VARLEN)
        best: dict[str, tuple[int, int, Slot]] = {}
        offsets = []
        off = 0
        for i, f in enumerate(self.fields):
            offsets.append(off)
            off += f.length if f.length != VARLEN else 0
            if version == 9 and i < scope_count:
                # v9 scope fields number what a record is about (1 system, 2 interface, ...), not elements.
                continue
            el = lookup_v9(f.id) if version in (5, 9) else lookup(f.pen, f.id)
            if el is None or f.length == VARLEN:
                continue
            fmt = _format(el.type, f.length)
            if fmt is None:
                continue
            rank = (el.priority, i)
            if el.column not in best or rank < best[el.column][:2]:
                best[el.column] = (*rank, Slot(el.column, el.type, f.length, f"f{i}"))
        chosen = sorted(best.values(), key=lambda item: item[1])
        self.slots: tuple[Slot, ...] = tuple(slot for _, _, slot in chosen)
        self.columns = frozenset(s.column for s in self.slots)
        names = [s.name for s in self.slots]
        formats = [_format(s.type, s.length) for s in self.slots]
        if self.varlen:
            self._used = {int(s.name[1:]) for s in self.slots}
            compact, pos = [], 0
            for s in self.slots:
                compact.append(pos)
                pos += s.length
            self._compact_length = pos
            self.dtype = np.dtype({"names": names, "formats": formats, "offsets": compact, "itemsize": max(pos, 1)})
        else:
            self.dtype = np.dtype({"names": names, "formats": formats,
                                   "offsets": [offsets[int(s.name[1:])] for s in self.slots],
                                   "itemsize": self.record_length})

    def same_as(self, other: "Template") -> bool:
        return self.fields == other.fields and self.scope_count == other.scope_count

    def decode(self, buf: bytes, start: int, end: int) -> np.ndarray:
        """The records of a data set body ``buf[start:end]``; trailing padding is ignored."""
        if not self.varlen:
            n = (end - start) // self.record_length
            return np.frombuffer(buf, dtype=self.dtype, count=n, offset=start)
        return self._decode_varlen(buf, start, end)

    def _decode_varlen(self, buf: bytes, start: int, end: int) -> np.ndarray:
        parts: list[bytes] = []
        n = 0
        pos = start
        used = self._used
        fields = self.fields
        while end - pos >= self.record_length:
            for i, f in enumerate(fields):
                length = f.length
                if length == VARLEN:
                    if pos >= end:
                        # The record's earlier fields took the set's last bytes: no length byte left.
                        raise RecordError("record_overrun")
                    length = buf[pos]
                    pos += 1
                    if length == 255:
                        if pos + 2 > end:
                            raise RecordError("record_overrun")
                        length = (buf[pos] << 8) | buf[pos + 1]
                        pos += 2
                if pos + length > end:
                    raise RecordError("record_overrun")
                if i in used:
                    parts.append(buf[pos:pos + length])
                pos += length
            n += 1
        if self._compact_length == 0:
            return np.zeros(n, dtype=self.dtype)
        return np.frombuffer(b"".join(parts), dtype=self.dtype, count=n)


_COMPILED: dict[tuple, Template] = {}
# Distinct templates kept compiled; exporters resend the same few over and over.
_COMPILED_MAX = 4096


def compiled(template_id: int, fields: tuple[Field, ...], version: int, scope_count: int = 0) -> Template:
    """The :class:`Template` for these field specifiers, compiled once and shared.

    Exporters resend their templates every few packets (softflowd every 16);
    a resend returns the very object already installed, so refreshing costs
    a dictionary lookup, not a compile.
    """
    key = (template_id, fields, version, scope_count)
    template = _COMPILED.get(key)
    if template is None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        template = _COMPILED[key] = Template(template_id, fields, version=version, scope_count=scope_count)
    return template


# NetFlow v5's fixed 48-byte record, as v9 field types (Cisco's v5 export format).
V5_TEMPLATE = Template(0, (
    Field(8, 4), Field(12, 4), Field(15, 4), Field(10, 2), Field(14, 2), Field(2, 4), Field(1, 4),
    Field(22, 4), Field(21, 4), Field(7, 2), Field(11, 2), Field(210, 1), Field(6, 1), Field(4, 1),
    Field(5, 1), Field(16, 2), Field(17, 2), Field(9, 1), Field(13, 1), Field(210, 2),
), version=5)


@dataclass
class Domain:
    """One exporter's observation domain: templates, clock, sampling and sequence state."""

    exporter: str
    version: int
    domain_id: int
    index: int
    templates: dict[int, Template] = field(default_factory=dict)
    refreshed: dict[int, float] = field(default_factory=dict)
    #: ``systemInitTimeMilliseconds`` from an options record (IPFIX uptimes).
    system_init_ms: int | None = None
    #: The rate declared for the whole domain (v5 header, options without a sampler id).
    sampling_rate: float = 1.0
    #: Rates declared per sampler/selector id.
    sampler_rates: dict[int, float] = field(default_factory=dict)
    next_sequence: int | None = None

    @property
    def label(self) -> str:
        kind = {5: "NetFlow v5 engine", 9: "NetFlow v9 source id", 10: "IPFIX observation domain"}[self.version]
        return f"{self.exporter} ({kind} {self.domain_id})"
