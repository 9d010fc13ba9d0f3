"""The systemd unit in deploy/: systemd accepts it, and its command line is one ``serve`` parses."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from flowsentinel.cli import build_parser

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "flowsentinel.service"
BINARY = "/opt/flowsentinel/bin/flowsentinel"


def _exec_start() -> list[str]:
    text = UNIT.read_text().replace("\\\n", " ")
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists; point it at a stand-in.
    stand_in = tmp_path / "flowsentinel"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(BINARY, str(stand_in)))
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    if run.returncode != 0 and ("Failed to" in run.stderr and "bus" in run.stderr.lower()):
        pytest.skip(f"systemd-analyze verify does not work here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr
    assert UNIT.name + ":" not in run.stderr, run.stderr  # no warnings about the unit itself


def test_the_unit_runs_serve_with_options_it_knows():
    argv = _exec_start()
    assert argv[0] == BINARY and argv[1] == "serve"
    args = build_parser().parse_args([a for a in argv[1:] if not a.startswith("$")])
    assert args.command == "serve" and args.host == "127.0.0.1" and args.token_file == "/etc/flowsentinel/tokens"
    text = UNIT.read_text()
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text and "KillSignal=SIGTERM" in text
