"""A second, independent exporter: pmacct's pmacctd with its nfprobe plugin, checked against nfcapd."""

from __future__ import annotations

import pytest

from flowsentinel.collector import Collector
from flowsentinel.collector.answer_key import decoded_rows, differences, nfdump_rows
from flowsentinel.collector.peers import nfcapd_collect, pmacct_export
from tests.collector.conftest import needs


@pytest.mark.parametrize("version", [9, 10])
def test_pmacct_export_decodes_as_nfdump_stores_it(version, pcaps):
    needs("pmacctd", "nfcapd", "nfdump")
    export = pmacct_export(pcaps / "ppa" / "http_espn.pcapng", version)
    assert export.datagrams and export.kernel_drops == 0
    records, summary = nfcapd_collect(export.datagrams)
    rows, uptimes = decoded_rows(export.datagrams)
    assert len(rows) == len(records) > 0 and "Bad Packets: 0" in summary
    assert differences(rows, nfdump_rows(records), ipfix_uptimes=uptimes) == []
    # pmacct, like softflowd, exports one direction per record: the collector stitches them.
    c = Collector()
    flows = sum(len(f) for f in c.collect([(d, "127.0.0.1") for d in export.datagrams]))
    assert c.counters.flows_stitched > 0 and flows == c.counters.flows_stitched + c.counters.flows_one_way
