"""Metering: packets (a capture file or a live interface) to NF v1/v2 flows.

The public entry points are :func:`meter_capture` and :func:`meter_interface`,
which return a :class:`MeterRun` to iterate for pandas DataFrame chunks, and
:func:`add_meter_arguments` / :func:`run_meter` for the ``flowsentinel meter``
command. Field definitions are in ``docs/metering.md``.
"""

from .capture import CaptureInfo, MeterError, inspect_capture
from .cli import add_meter_arguments, run_meter
from .config import MeterConfig
from .meter import MeterRun, MeterStats, flow_columns, meter_capture, meter_interface

__all__ = [
    "CaptureInfo",
    "MeterConfig",
    "MeterError",
    "MeterRun",
    "MeterStats",
    "add_meter_arguments",
    "flow_columns",
    "inspect_capture",
    "meter_capture",
    "meter_interface",
    "run_meter",
]
