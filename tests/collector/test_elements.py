"""The element table: consistent in itself, documented in docs/collector.md, and complete for NF v2."""

from __future__ import annotations

import re

from flowsentinel.collector.elements import NTOP_PEN, REVERSE_PEN, elements, lookup, lookup_v9
from flowsentinel.schema import TIME_COLUMNS, V2_FEATURES
from tests.collector.conftest import REPO

DOC = (REPO / "docs" / "collector.md").read_text()


def test_nprobe_v9_ids_are_the_ipfix_ids_plus_the_base():
    for el in elements():
        if el.pen == NTOP_PEN:
            assert el.v9 == 57472 + el.id and lookup_v9(el.v9) is el


def test_every_nf_v2_column_and_time_has_an_element():
    filled = {el.column for el in elements()}
    assert set(V2_FEATURES) | set(TIME_COLUMNS) <= filled


def test_reverse_elements_mirror_the_reversible_ones():
    for el in elements():
        if el.pen == 0 and el.reversible:
            assert lookup(REVERSE_PEN, el.id).column == "_REV:" + el.column


def test_docs_list_every_element():
    rows = set(re.findall(r"^\| (\d+) \| (\d+) \| (\w+) \|", DOC, flags=re.M))
    listed = {(int(pen), int(i), name) for pen, i, name in rows}
    table = {(el.pen, el.id, el.name) for el in elements() if el.pen != REVERSE_PEN}
    assert listed == table
