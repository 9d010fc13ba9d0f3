"""nfdump's files as flows: an archive nfcapd wrote, its ``nfdump -o csv`` text, and ``detect`` on both."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from flowsentinel.collector import Collector
from flowsentinel.collector.nfdump import flags_value, is_nfcapd_file, is_nfdump_csv, nfdump_json_records, read_nfdump
from flowsentinel.collector.peers import EXPORTS, nfcapd_collect, softflowd_export
from flowsentinel.errors import FlowReadError
from tests.collector.conftest import cli_env, needs

CAPTURES = ["ppa/http_espn.pcapng", "ppa/ppa1e_portscan.pcap"]
KEY = ["IPV4_SRC_ADDR", "L4_SRC_PORT", "IPV4_DST_ADDR", "L4_DST_PORT", "PROTOCOL"]


@pytest.fixture(scope="module")
def archive(pcaps, tmp_path_factory):
    """An nfcapd file of softflowd's v9 export of two captures, and the datagrams it came from."""
    needs("softflowd", "nfcapd", "nfdump")
    folder = tmp_path_factory.mktemp("nfcapd")
    datagrams = [d for c in CAPTURES for d in softflowd_export(pcaps / c, EXPORTS["v9"]).datagrams]
    nfcapd_collect(datagrams, keep_dir=folder)
    (path,) = sorted(folder.glob("nfcapd.*"))
    return path, datagrams


def _sorted(frames) -> pd.DataFrame:
    frame = pd.concat(list(frames), ignore_index=True)
    return frame.sort_values(KEY).reset_index(drop=True)


TIMES = ["FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS", "FLOW_DURATION_MILLISECONDS", "DURATION_IN",
         "DURATION_OUT"]


def test_an_nfcapd_archive_gives_the_flows_the_collector_gives(archive):
    path, datagrams = archive
    assert is_nfcapd_file(path) and not is_nfdump_csv(path)
    from_archive = _sorted(read_nfdump(path))
    collected = _sorted(Collector().collect([(d, "127.0.0.1") for d in datagrams]))
    assert list(from_archive.columns) == list(collected.columns)
    rest = [c for c in collected.columns if c not in TIMES]
    pd.testing.assert_frame_equal(from_archive[rest], collected[rest])
    # nfdump 1.7.1 stored 0 for the times it read from an uptime of 0: only those records' times differ.
    lost = sum(r["first"].startswith("1970") or r["last"].startswith("1970") for r in nfdump_json_records(path))
    differ = (from_archive[TIMES] != collected[TIMES]).any(axis=1)
    assert int(differ.sum()) <= lost


def test_nfdump_csv_gives_the_same_flows_to_the_second(archive, tmp_path):
    path, _ = archive
    csv_path = tmp_path / "flows.csv"
    with open(csv_path, "w") as fh:
        subprocess.run(["nfdump", "-r", str(path), "-o", "csv"], stdout=fh, check=True, timeout=60,
                       env=dict(os.environ, TZ="UTC"))
    assert is_nfdump_csv(csv_path)
    from_csv = _sorted(read_nfdump(csv_path))
    from_archive = _sorted(read_nfdump(path))
    assert len(from_csv) == len(from_archive)
    assert from_csv[["IN_PKTS", "OUT_PKTS", "IN_BYTES", "OUT_BYTES"]].sum().tolist() == \
        from_archive[["IN_PKTS", "OUT_PKTS", "IN_BYTES", "OUT_BYTES"]].sum().tolist()
    # nfdump's CSV has whole seconds: the starts agree to the second.
    assert ((from_archive["FLOW_START_MILLISECONDS"] - from_csv["FLOW_START_MILLISECONDS"]).abs() < 1000).all()


def test_detect_scores_an_nfcapd_archive(archive, tmp_path):
    from flowsentinel.config import load_config
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows
    from tests.collector.conftest import REPO

    features = load_config(str(REPO / "configs" / "exporter.toml"), []).features
    model = tmp_path / "model"
    save_model(cnn_bilstm(max_epochs=1, verbose=False, feature_config=features)
               .fit(generate_flows(600, random_state=2)), model)
    path, _ = archive
    out = tmp_path / "verdicts.jsonl"
    proc = subprocess.run([sys.executable, "-m", "flowsentinel.cli", "detect", str(path), "--model-dir", str(model),
                           "--output", str(out), "--no-progress", "--no-suppress"], capture_output=True, text=True, timeout=300,
                          env=cli_env())
    assert proc.returncode == 0, proc.stderr[-1000:]
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(verdicts) == len(_sorted(read_nfdump(path)))
    assert {v["event_type"] for v in verdicts} <= {"alert", "flow"}


def test_a_file_that_is_neither_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(FlowReadError, match="neither an nfcapd file nor nfdump -o csv output"):
        list(read_nfdump(path))


def test_flag_strings():
    assert flags_value("CEUAPRSF") == 255 and flags_value("......S.") == 2 and flags_value(".....R..") == 4
