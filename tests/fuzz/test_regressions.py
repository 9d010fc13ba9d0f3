"""Replay the inputs that once made the flow-file reader fail (``regressions/``, kept by scripts/fuzz_reader.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import HEADER, ROW, check_bytes

HERE = Path(__file__).resolve().parent
SAVED = sorted(p for p in (HERE / "regressions").iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("path", SAVED, ids=[p.name for p in SAVED])
def test_saved_input_reads_within_the_invariants(path, tmp_path):
    check_bytes(path.read_bytes(), tmp_path)


def test_seed_row_reads(tmp_path):
    # The harness itself on a real row in every form it builds, so that a broken harness cannot pass quietly.
    for mode in range(4):
        check_bytes(bytes([mode]) + ROW + b"\n" + ROW + b"\n", tmp_path)
    assert HEADER.count(b",") == ROW.count(b",")
