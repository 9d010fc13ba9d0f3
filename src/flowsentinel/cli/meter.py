"""``flowsentinel meter``: packets (a capture or an interface) to NF flows."""

from __future__ import annotations

import argparse

NAME = "meter"
HELP = "turn a capture or interface into NF flows"


def add_arguments(m: argparse.ArgumentParser) -> None:
    try:
        from ..metering.cli import add_meter_arguments

        add_meter_arguments(m)
    except ImportError as exc:  # pragma: no cover - nfstream missing
        m.add_argument("rest", nargs="*")
        m.set_defaults(meter_unavailable=str(exc))


def run(args: argparse.Namespace) -> int:
    from ..metering.cli import run_meter

    return run_meter(args)
