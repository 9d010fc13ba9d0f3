"""Shared fixtures: the real NF-BoT-IoT-v2 sample (skipped where absent) and synthetic flows."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from flowsentinel.paths import data_dir

# The hardening tests' small model and generated flows (tests/hardening_support.py).
pytest_plugins = ("tests.hardening_support",)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"


def data_root() -> Path:
    return data_dir()


@pytest.fixture(scope="session")
def sample_path() -> Path:
    path = data_root() / SAMPLE
    if not path.exists():
        pytest.skip(f"real NF-BoT-IoT-v2 sample not found at {path}; set FLOWSENTINEL_DATA to the shared data folder")
    return path


@pytest.fixture(scope="session")
def sample_slice(sample_path, tmp_path_factory) -> Path:
    """The first 6,000 rows of the real sample, as its own gzip CSV (text unchanged)."""
    out = tmp_path_factory.mktemp("slice") / "slice.csv.gz"
    with gzip.open(sample_path, "rt") as src, gzip.open(out, "wt") as dst:
        for i, line in enumerate(src):
            if i > 6000:
                break
            dst.write(line)
    return out


@pytest.fixture(scope="session")
def pcaps() -> Path:
    """The shared captures folder (skipped where it is absent)."""
    folder = data_dir() / "pcaps"
    if not (folder / "ppa").is_dir():
        pytest.skip(f"shared captures not found at {folder}; set FLOWSENTINEL_DATA to the shared data folder")
    return folder


@pytest.fixture(scope="session")
def real_data() -> bool:
    """Whether the shared NF-BoT-IoT-v2 sample is there (tests that always run adapt to it)."""
    return (data_root() / SAMPLE).exists()


@pytest.fixture(scope="session")
def cli_slice(real_data, tmp_path_factory) -> Path:
    """6,000 flows for the end-to-end tests that must run everywhere: the first rows of the
    real sample where the shared data is, else generated flows (marked SYNTHETIC)."""
    out = tmp_path_factory.mktemp("cli-slice") / "slice.csv.gz"
    if real_data:
        with gzip.open(data_root() / SAMPLE, "rt") as src, gzip.open(out, "wt") as dst:
            for i, line in enumerate(src):
                if i > 6000:
                    break
                dst.write(line)
    else:
        from flowsentinel.synthetic import generate_flows

        generate_flows(6000, random_state=3).to_csv(out, index=False)
    return out


@pytest.fixture(scope="session")
def sample_frame(sample_slice):
    from flowsentinel.io.readers import ReadConfig, read_flows

    frame, report = read_flows(sample_slice, ReadConfig(rejects_dir=sample_slice.parent))
    assert report.n_rejected == 0
    return frame


@pytest.fixture(scope="session")
def synthetic():
    from flowsentinel.synthetic import generate_flows

    return generate_flows(3000, random_state=7, balance=0.3)


@pytest.fixture(scope="session")
def portscan() -> Path:
    """The shared port-scan capture (``use = check``: for reporting only); needs nfstream to meter it."""
    path = data_root() / "pcaps" / "ppa" / "ppa1e_portscan.pcap"
    if not path.exists():
        pytest.skip(f"shared capture not found at {path}; set FLOWSENTINEL_DATA to the shared data folder")
    pytest.importorskip("nfstream")
    return path


@pytest.fixture(scope="session")
def portscan_flows(portscan):
    """The port-scan capture metered into NF v2 flows."""
    import pandas as pd

    from flowsentinel.metering import meter_capture

    return pd.concat(list(meter_capture(portscan)), ignore_index=True)
