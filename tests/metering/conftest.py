"""Fixtures for the metering tests: the shared captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.metering.pcapgen import data_root


@pytest.fixture(scope="session")
def pcaps() -> Path:
    folder = data_root() / "pcaps"
    if not (folder / "ndpi").is_dir():
        pytest.skip(f"shared captures not found at {folder}; set FLOWSENTINEL_DATA to the shared data folder")
    return folder
