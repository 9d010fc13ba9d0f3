"""Datagrams to data records: NetFlow v5, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011).

:meth:`Decoder.feed` takes one datagram and its exporter's address. It
reads the header, keeps templates per exporter address, version and
observation domain (:class:`~flowsentinel.collector.templates.Domain`),
and turns each data set into a :class:`Chunk`: a structured numpy array
read with one ``np.frombuffer`` call, with the header values the records'
times depend on. No per-record Python work happens here for fixed-length
templates; :mod:`flowsentinel.collector.records` converts whole batches of
chunks into columns later.

* Templates are refreshed by a resend, replaced when an id is redefined,
  withdrawn by an IPFIX withdrawal (field count 0), and expired after
  ``template_timeout_s`` without a refresh.
* A data set that arrives before its template is held (at most
  ``max_held_sets``, for ``hold_s``) and decoded when the template comes.
* Options templates are recognised and counted; their records set the
  domain's clock (``systemInitTimeMilliseconds``) and sampling rates.
* Malformed input never raises: the datagram, or the rest of it from the
  bad set on, is counted under one of
  :data:`~flowsentinel.collector.counters.MALFORMED_REASONS` and skipped.

>>> import struct
>>> d = Decoder()
>>> header = struct.pack("!HHIIIIBBH", 5, 1, 1000, 1_700_000_000, 0, 7, 0, 0, 0)
>>> record = struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), bytes(4),
...                      0, 0, 3, 180, 400, 900, 40000, 80, 0, 0x12, 6, 0, 0, 0, 0, 0, 0)
>>> d.feed(header + record, "192.0.2.1", now=0.0)
>>> chunks = d.take()
>>> len(chunks), len(chunks[0].records), d.counters.records
(1, 1, 1)
>>> d.feed(b"\\x00\\x07" + bytes(30), "192.0.2.1", now=0.0)
>>> d.counters.unknown_version
1
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import CollectorConfig
from .counters import Counters
from .records import apply_options
from .templates import V5_TEMPLATE, VARLEN, Domain, Field, RecordError, Template, TemplateError, compiled

__all__ = ["Chunk", "Decoder"]

log = logging.getLogger(__name__)

_V5_HEADER = struct.Struct("!HHIIIIBBH")
_V9_HEADER = struct.Struct("!HHIIII")
_IPFIX_HEADER = struct.Struct("!HHIII")
_SET = struct.Struct("!HH")
_PAIR = struct.Struct("!HH")
_V5_RECORD = 48
_V5_MAX_RECORDS = 30
#: Fields per template beyond which a template is absurd: every field takes at
#: least 4 bytes of a datagram, so no real template comes near it.
_MAX_FIELDS = 16_384


@dataclass
class Chunk:
    """The records of one data set, with what their times depend on."""

    template: Template
    domain: Domain
    records: np.ndarray
    export_ms: int
    uptime_ms: int
    arrival: float


class Decoder:
    """Decodes datagrams into :class:`Chunk` objects and keeps the template state.

    ``on_template`` is called with ``(domain, template)`` for every new or
    changed data template, before any of its records are decoded (the
    collector checks there that the template supplies the model's columns).
    """

    def __init__(self, config: CollectorConfig = CollectorConfig(), counters: Counters | None = None,
                 on_template: Callable[[Domain, Template], None] | None = None):
        self.config = config
        self.counters = counters if counters is not None else Counters()
        self.on_template = on_template
        self.domains: dict[tuple[str, int, int], Domain] = {}
        self._held: dict[tuple[int, int], deque] = {}
        self._n_held = 0
        self._chunks: list[Chunk] = []
        self._pending_records = 0

    # ---- public ----------------------------------------------------------
    @property
    def pending_records(self) -> int:
        """Records decoded since the last :meth:`take`."""
        return self._pending_records

    def take(self) -> list[Chunk]:
        """The chunks decoded since the last call."""
        chunks, self._chunks, self._pending_records = self._chunks, [], 0
        return chunks

    def feed(self, data: bytes, exporter: str, now: float) -> None:
        """Decode one datagram from ``exporter`` (its address) received at ``now`` (monotonic seconds)."""
        c = self.counters
        c.packets += 1
        c.bytes += len(data)
        if len(data) < 2:
            c.malformed["short_header"] += 1
            return
        version = (data[0] << 8) | data[1]
        if version == 9:
            c.by_version[9] += 1
            self._v9(data, exporter, now)
        elif version == 10:
            c.by_version[10] += 1
            self._ipfix(data, exporter, now)
        elif version == 5:
            c.by_version[5] += 1
            self._v5(data, exporter, now)
        else:
            c.unknown_version += 1

    def expire(self, now: float) -> None:
        """Drop templates not refreshed within ``template_timeout_s`` and held sets older than ``hold_s``."""
        timeout = self.config.template_timeout_s
        for dom in self.domains.values():
            for tid in [t for t, seen in dom.refreshed.items() if now - seen > timeout]:
                self._forget(dom, tid)
                self.counters.templates_expired += 1
        for key in list(self._held):
            queue = self._held[key]
            while queue and now - queue[0][4] > self.config.hold_s:
                queue.popleft()
                self._n_held -= 1
                self.counters.held_dropped["expired"] += 1
            if not queue:
                del self._held[key]

    def held_sets(self) -> int:
        return self._n_held

    # ---- domains ---------------------------------------------------------
    def _domain(self, exporter: str, version: int, domain_id: int) -> Domain:
        key = (exporter, version, domain_id)
        dom = self.domains.get(key)
        if dom is None:
            dom = self.domains[key] = Domain(exporter, version, domain_id, index=len(self.domains))
        return dom

    def _sequence(self, dom: Domain, seq: int, advance: int | None) -> None:
        if dom.next_sequence is not None and seq != dom.next_sequence:
            self.counters.sequence_gaps += 1
        dom.next_sequence = None if advance is None else (seq + advance) & 0xFFFFFFFF

    # ---- NetFlow v5 ------------------------------------------------------
    def _v5(self, data: bytes, exporter: str, now: float) -> None:
        c = self.counters
        if len(data) < _V5_HEADER.size:
            c.malformed["short_header"] += 1
            return
        _, count, uptime, secs, nsecs, seq, engine_type, engine_id, sampling = _V5_HEADER.unpack_from(data)
        if not 0 < count <= _V5_MAX_RECORDS or _V5_HEADER.size + count * _V5_RECORD > len(data):
            c.malformed["v5_count"] += 1
            return
        dom = self._domain(exporter, 5, (engine_type << 8) | engine_id)
        if 0 not in dom.templates:
            dom.templates[0] = V5_TEMPLATE
            self._announce(dom, V5_TEMPLATE)
        dom.refreshed[0] = now
        # The top two bits are the sampling mode, the other 14 the interval.
        interval = sampling & 0x3FFF
        dom.sampling_rate = float(interval) if interval > 1 else 1.0
        self._sequence(dom, seq, count)
        records = np.frombuffer(data, dtype=V5_TEMPLATE.dtype, count=count, offset=_V5_HEADER.size)
        self._emit(V5_TEMPLATE, dom, records, secs * 1000 + nsecs // 1_000_000, uptime, now)

    # ---- NetFlow v9 ------------------------------------------------------
    def _v9(self, data: bytes, exporter: str, now: float) -> None:
        if len(data) < _V9_HEADER.size:
            self.counters.malformed["short_header"] += 1
            return
        _, _, uptime, secs, seq, source_id = _V9_HEADER.unpack_from(data)
        dom = self._domain(exporter, 9, source_id)
        self._sequence(dom, seq, 1)
        self._sets(data, _V9_HEADER.size, len(data), dom, secs * 1000, uptime, now, template_set=0, options_set=1)

    # ---- IPFIX -----------------------------------------------------------
    def _ipfix(self, data: bytes, exporter: str, now: float) -> None:
        c = self.counters
        if len(data) < _IPFIX_HEADER.size:
            c.malformed["short_header"] += 1
            return
        _, length, secs, seq, domain_id = _IPFIX_HEADER.unpack_from(data)
        if length != len(data):
            c.malformed["length_mismatch"] += 1
            return
        dom = self._domain(exporter, 10, domain_id)
        before = c.records
        held = self._n_held
        self._sets(data, _IPFIX_HEADER.size, length, dom, secs * 1000, 0, now, template_set=2, options_set=3)
        # IPFIX counts data records; records still waiting for a template cannot be counted yet.
        self._sequence(dom, seq, None if self._n_held != held else c.records - before)

    # ---- sets ------------------------------------------------------------
    def _sets(self, data: bytes, off: int, end: int, dom: Domain, export_ms: int, uptime: int, now: float,
              *, template_set: int, options_set: int) -> None:
        c = self.counters
        while end - off >= 4:
            set_id, set_len = _SET.unpack_from(data, off)
            if set_len < 4 or off + set_len > end:
                c.malformed["set_length"] += 1
                return
            body, stop = off + 4, off + set_len
            off = stop
            try:
                if set_id >= 256:
                    self._data(data, body, stop, dom, set_id, export_ms, uptime, now)
                elif set_id == template_set:
                    self._templates(data, body, stop, dom, now, options=False)
                elif set_id == options_set:
                    self._templates(data, body, stop, dom, now, options=True)
                else:
                    c.malformed["reserved_set_id"] += 1
            except (TemplateError, RecordError) as exc:
                c.malformed[str(exc)] += 1
                return

    def _templates(self, data: bytes, off: int, end: int, dom: Domain, now: float, *, options: bool) -> None:
        ipfix = dom.version == 10
        # Template records end where fewer bytes remain than a record header: padding.
        while end - off >= 4:
            tid, count = _PAIR.unpack_from(data, off)
            off += 4
            scope = 0
            if options and ipfix:
                if end - off < 2 and count:
                    raise TemplateError("template_truncated")
                if count:
                    scope = (data[off] << 8) | data[off + 1]
                    off += 2
            elif options:
                # v9: count is the scope length in bytes; the option length follows.
                if end - off < 2:
                    raise TemplateError("template_truncated")
                scope_len, option_len = count, (data[off] << 8) | data[off + 1]
                off += 2
                if scope_len % 4 or option_len % 4:
                    raise TemplateError("options_template")
                scope, count = scope_len // 4, (scope_len + option_len) // 4
            if ipfix and count == 0:
                self._withdraw(dom, tid, options)
                continue
            if tid < 256:
                raise TemplateError("template_id")
            if count == 0:
                raise TemplateError("template_empty")
            if count > _MAX_FIELDS:
                raise TemplateError("template_absurd")
            if options and (scope == 0 or scope > count):
                raise TemplateError("options_template")
            fields = []
            for _ in range(count):
                if end - off < 4:
                    raise TemplateError("template_truncated")
                ftype, flen = _PAIR.unpack_from(data, off)
                off += 4
                pen = 0
                if ipfix and ftype & 0x8000:
                    if end - off < 4:
                        raise TemplateError("template_truncated")
                    pen = int.from_bytes(data[off:off + 4], "big")
                    off += 4
                    ftype &= 0x7FFF
                if flen == VARLEN and not ipfix:
                    raise TemplateError("template_field_length")
                fields.append(Field(ftype, flen, pen))
            self._install(dom, compiled(tid, tuple(fields), dom.version, scope), now)

    def _install(self, dom: Domain, template: Template, now: float) -> None:
        c = self.counters
        tid = template.template_id
        old = dom.templates.get(tid)
        dom.refreshed[tid] = now
        if old is not None and (old is template or old.same_as(template)):
            c.templates_refreshed += 1
            return
        if old is not None:
            c.templates_changed += 1
        if template.is_options:
            c.options_templates += 1
        else:
            c.templates += 1
        dom.templates[tid] = template
        if not template.is_options:
            self._announce(dom, template)
        queue = self._held.pop((dom.index, tid), None)
        if queue:
            self._n_held -= len(queue)
            for body, export_ms, uptime, _, arrival in queue:
                before = c.records
                try:
                    self._decode(template, dom, body, 0, len(body), export_ms, uptime, arrival)
                except RecordError as exc:
                    c.malformed[str(exc)] += 1
                c.records_released += c.records - before

    def _announce(self, dom: Domain, template: Template) -> None:
        if self.on_template is not None:
            self.on_template(dom, template)

    def _withdraw(self, dom: Domain, tid: int, options: bool) -> None:
        # RFC 7011 8.1: template id 2 (or 3 in an options set) withdraws every template of that kind.
        if tid in (2, 3):
            gone = [t for t, tpl in dom.templates.items() if tpl.is_options == options]
        elif tid >= 256:
            gone = [tid] if tid in dom.templates else []
        else:
            raise TemplateError("template_id")
        for t in gone:
            self._forget(dom, t)
            self.counters.templates_withdrawn += 1

    @staticmethod
    def _forget(dom: Domain, tid: int) -> None:
        dom.templates.pop(tid, None)
        dom.refreshed.pop(tid, None)

    def _data(self, data: bytes, off: int, end: int, dom: Domain, tid: int, export_ms: int, uptime: int,
              now: float) -> None:
        template = dom.templates.get(tid)
        if template is not None and now - dom.refreshed[tid] > self.config.template_timeout_s:
            self._forget(dom, tid)
            self.counters.templates_expired += 1
            template = None
        if template is None:
            self._hold(dom, tid, bytes(data[off:end]), export_ms, uptime, now)
            return
        self._decode(template, dom, data, off, end, export_ms, uptime, now)

    def _hold(self, dom: Domain, tid: int, body: bytes, export_ms: int, uptime: int, now: float) -> None:
        c = self.counters
        if self._n_held >= self.config.max_held_sets:
            c.held_dropped["overflow"] += 1
            return
        self._held.setdefault((dom.index, tid), deque()).append((body, export_ms, uptime, tid, now))
        self._n_held += 1
        c.sets_held += 1

    def _decode(self, template: Template, dom: Domain, buf: bytes, off: int, end: int, export_ms: int,
                uptime: int, arrival: float) -> None:
        records = template.decode(buf, off, end)
        if not len(records):
            return
        if template.is_options:
            self.counters.options_records += len(records)
            apply_options(template, dom, records)
            return
        self._emit(template, dom, records, export_ms, uptime, arrival)

    def _emit(self, template: Template, dom: Domain, records: np.ndarray, export_ms: int, uptime: int,
              arrival: float) -> None:
        self.counters.records += len(records)
        self._pending_records += len(records)
        self._chunks.append(Chunk(template, dom, records, export_ms, uptime, arrival))
