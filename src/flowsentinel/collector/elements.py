"""The Information Elements the collector reads, from ``data/ipfix_elements.json``.

Each element names the NF column it fills (``IN_BYTES``, ``L7_PROTO``, ...)
or a working value whose name starts with ``_`` (sampling, clocks). IANA
elements marked reversible may also arrive as RFC 5103 reverse elements
(enterprise 29305); they fill ``_REV:<column>``, the reverse direction's
value, which :mod:`flowsentinel.collector.flows` turns into the ``OUT``
side of the flow.

>>> lookup(0, 1).column
'IN_BYTES'
>>> lookup(REVERSE_PEN, 1).column
'_REV:IN_BYTES'
>>> lookup(NTOP_PEN, 118).column, lookup_v9(57590).column
('L7_PROTO', 'L7_PROTO')
>>> lookup(0, 9999) is None
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from ..errors import ConfigError
from ..paths import package_file

__all__ = ["Element", "REVERSE_PEN", "NTOP_PEN", "ELEMENT_TYPES", "REVERSE_PREFIX", "elements", "lookup", "lookup_v9"]

#: RFC 5103: the enterprise number that marks a reverse-direction element.
REVERSE_PEN = 29305
#: ntop's enterprise number (nProbe's own elements in IPFIX).
NTOP_PEN = 35632
REVERSE_PREFIX = "_REV:"
#: How a field's bytes become a value; see the file's ``about`` text.
ELEMENT_TYPES = frozenset(
    {"unsigned", "flags", "ipv4", "ipv6", "milliseconds", "seconds", "ntp", "uptime", "delta_us", "microseconds"}
)
ELEMENTS_FILE = "ipfix_elements.json"


@dataclass(frozen=True)
class Element:
    """One Information Element: where it comes from and what it fills."""

    pen: int
    id: int
    name: str
    type: str
    column: str
    priority: int = 0
    reversible: bool = False
    v9: int | None = None


@lru_cache(maxsize=1)
def _table() -> tuple[dict[tuple[int, int], Element], dict[int, Element], int]:
    path = package_file(ELEMENTS_FILE)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the element table: {exc}") from exc
    by_key: dict[tuple[int, int], Element] = {}
    v9: dict[int, Element] = {}
    for i, item in enumerate(raw["elements"]):
        el = Element(**item)
        if el.type not in ELEMENT_TYPES:
            raise ConfigError(f"{path}: element {i} ({el.name}): unknown type {el.type!r}")
        if (el.pen, el.id) in by_key:
            raise ConfigError(f"{path}: element {i} ({el.name}): ({el.pen}, {el.id}) listed twice")
        by_key[(el.pen, el.id)] = el
        if el.reversible:
            by_key[(REVERSE_PEN, el.id)] = Element(REVERSE_PEN, el.id, el.name + "Reverse", el.type,
                                                   REVERSE_PREFIX + el.column, el.priority)
        if el.v9 is not None:
            v9[el.v9] = el
    return by_key, v9, int(raw["ntop_v9_base"])


def elements() -> list[Element]:
    """Every element of the table (reverse elements included), in table order."""
    return list(_table()[0].values())


def lookup(pen: int, element_id: int) -> Element | None:
    """The element ``element_id`` of enterprise ``pen`` (0: IANA), or ``None`` if unknown."""
    return _table()[0].get((pen, element_id))


def lookup_v9(field_type: int) -> Element | None:
    """A NetFlow v9 field type: IANA's numbers below 32768, nProbe's at 57472 + id."""
    by_key, v9, _ = _table()
    if field_type < 0x8000:
        return by_key.get((0, field_type))
    return v9.get(field_type)
