"""Fixtures for the collector tests: the shared captures, the peer programs, a model trained on exporter columns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowsentinel.collector.peers import tool_missing
from flowsentinel.paths import data_dir

REPO = Path(__file__).resolve().parents[2]
GOLDEN_DIR = REPO / "tests" / "golden" / "collector"
SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"


def needs(*tools: str) -> None:
    reason = tool_missing(*tools)
    if reason:
        pytest.skip(reason)


def cli_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))


#: The default network (configs/default.toml's [model]), for a short run on configs/exporter.toml's columns.
SMALL_NETWORK = ["model.conv_channels=[8, 16]", "model.pool=6", "model.lstm_hidden=16", "model.dense=32",
                 "model.dropout=0.2", "model.input_bins=0"]


@pytest.fixture(scope="session")
def exporter_model(tmp_path_factory) -> Path:
    """A short run of configs/exporter.toml with the default network: 20,000 flows of the real sample, 2 epochs.

    Enough to see the collector carry flows to verdicts; not a model to judge
    detection by (the lead trains configs/exporter.toml in full).
    """
    sample = data_dir() / SAMPLE
    if not sample.exists():
        pytest.skip(f"real NF-BoT-IoT-v2 sample not found at {sample}; set FLOWSENTINEL_DATA")
    model = tmp_path_factory.mktemp("exporter-model") / "model"
    overrides = [arg for item in SMALL_NETWORK for arg in ("--set", item)]
    proc = subprocess.run(
        [sys.executable, "-m", "flowsentinel.cli", "-q", "train", "--data", str(sample), "--config",
         str(REPO / "configs" / "exporter.toml"), *overrides, "--max-rows", "20000", "--epochs", "2",
         "--no-reference", "--model-dir", str(model)],
        capture_output=True, text=True, timeout=600, env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return model
