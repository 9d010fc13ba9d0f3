"""``flowsentinel meter`` through the functions the CLI attaches."""

from __future__ import annotations

import argparse
import gzip

import pandas as pd
import pytest

pytest.importorskip("nfstream", reason="metering needs nfstream")

from flowsentinel.metering import add_meter_arguments, run_meter  # noqa: E402
from flowsentinel.schema import TIME_COLUMNS, V1_FEATURES, V2_FEATURES, detect_schema  # noqa: E402


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="flowsentinel meter")
    add_meter_arguments(parser)
    return run_meter(parser.parse_args(argv))


def test_meter_writes_nf_v2_csv(tmp_path, pcaps, capsys):
    out = tmp_path / "flows.csv"
    assert _cli([str(pcaps / "ndpi" / "coap_mqtt.pcap"), "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == V2_FEATURES + list(TIME_COLUMNS)
    assert detect_schema(df.columns).name == "v3" or detect_schema(df.columns).name == "v2"
    assert len(df) == 16
    assert "16 flows from 1080 of 1082 packets" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.partial"))


def test_meter_v1_gzip_with_flow_id(tmp_path, pcaps):
    out = tmp_path / "flows.csv.gz"
    argv = [str(pcaps / "ndpi" / "dns.pcap"), "-o", str(out), "--schema", "v1", "--flow-id", "--no-progress",
            "--idle-timeout", "10", "--active-timeout", "600"]
    assert _cli(argv) == 0
    with gzip.open(out, "rt") as fh:
        df = pd.read_csv(fh)
    assert list(df.columns) == ["FLOW_ID"] + V1_FEATURES + list(TIME_COLUMNS)
    # a 10 s idle timeout splits the 41 s DNS exchange of dns.pcap
    assert len(df) == 3
