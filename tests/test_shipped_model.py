"""The model that ships inside the package: present, intact, and used when no --model-dir is given."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from flowsentinel.cli import main
from flowsentinel.paths import SHIPPED_MODELS, shipped_model_dir
from flowsentinel.persistence import load_model
from flowsentinel.synthetic import generate_flows

ROOT = Path(__file__).resolve().parents[1]


#: What softflowd's NetFlow v9 template gives once the two directions are stitched (docs/collector.md),
#: less the times and addresses, which no model reads.
EXPORTER_COLUMNS = {"L4_SRC_PORT", "L4_DST_PORT", "PROTOCOL", "IN_BYTES", "IN_PKTS", "OUT_BYTES", "OUT_PKTS",
                    "TCP_FLAGS", "CLIENT_TCP_FLAGS", "SERVER_TCP_FLAGS", "FLOW_DURATION_MILLISECONDS",
                    "DURATION_IN", "DURATION_OUT", "ICMP_TYPE", "ICMP_IPV4_TYPE"}


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_model_loads_with_every_digest_checked(name):
    detector = load_model(shipped_model_dir(name))
    manifest = json.loads((shipped_model_dir(name) / "manifest.json").read_text())
    assert "Benign" in list(detector.classes_)
    # Train/serve parity: the shipped model never reads the columns a meter or exporter cannot reproduce.
    features = set(detector.feature_names_in_)
    assert "L7_PROTO" not in features and "FLOW_DURATION_MILLISECONDS" not in features
    assert not {"IPV4_SRC_ADDR", "IPV4_DST_ADDR"} & features
    # Trained on the NF files and the `train` captures, never on the check captures.
    names = [s["name"] for s in manifest["training_data"]["sources"]]
    assert "pcaps/labels.csv[train]" in names and not any("check" in n for n in names)
    if name == "exporter":  # collect's default: only what a plain exporter sends
        assert features <= EXPORTER_COLUMNS, sorted(features - EXPORTER_COLUMNS)


def _flows_without_addresses(tmp_path: Path, n: int = 200) -> Path:
    frame = generate_flows(n, random_state=3, balance=0.3)
    frame = frame.drop(columns=[c for c in ("IPV4_SRC_ADDR", "IPV4_DST_ADDR") if c in frame.columns])
    path = tmp_path / "flows.csv"
    frame.to_csv(path, index=False)
    return path


def test_detect_without_model_dir_scores_a_flow_file_without_addresses(tmp_path):
    flows = _flows_without_addresses(tmp_path)
    out = tmp_path / "verdicts.csv"
    assert main(["-q", "detect", str(flows), "--format", "csv", "-o", str(out)]) == 0
    verdicts = pd.read_csv(out)
    assert len(verdicts) == 200
    assert verdicts["score"].between(0, 1).all()


def test_detect_without_model_dir_scores_a_capture(tmp_path):
    pytest.importorskip("nfstream")
    scapy = pytest.importorskip("scapy.all")
    packets = []
    for port in range(20, 60):  # a SYN to 40 ports, unanswered: a port scan
        packets.append(scapy.Ether() / scapy.IP(src="10.0.0.5", dst="10.0.0.9") /
                       scapy.TCP(sport=40000, dport=port, flags="S"))
    for i, p in enumerate(packets):
        p.time = 1_700_000_000 + i * 0.01
    capture = tmp_path / "scan.pcap"
    scapy.wrpcap(str(capture), packets)
    out = tmp_path / "eve.json"
    assert main(["-q", "detect", str(capture), "-o", str(out), "--no-suppress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    flows = [r for r in records if r.get("event_type") in ("flow", "alert")]
    assert len(flows) == 40


@pytest.mark.slow
def test_the_wheel_carries_the_shipped_model(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("flowsentinel-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED_MODELS:
        for file in shipped_model_dir(name).iterdir():
            if file.is_file():
                assert f"flowsentinel/data/models/{name}/{file.name}" in names
