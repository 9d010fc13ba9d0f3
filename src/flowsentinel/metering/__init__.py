"""Metering: packets (a capture file or a live interface) to NF v1/v2 flows.

The public entry points are :func:`meter_capture` and :func:`meter_interface`,
which return a :class:`MeterRun` to iterate for pandas DataFrame chunks, and
:func:`add_meter_arguments` / :func:`run_meter` for the ``flowsentinel meter``
command. Field definitions are in ``docs/metering.md``.

The names are imported on first use: the meter needs the optional ``nfstream``
package (``pip install .[metering]``), and code that only reads a
:class:`MeterConfig` (a labelled-sources file, an evaluation in an environment
without the meter) must not need it.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CaptureInfo": ".capture",
    "MeterError": ".capture",
    "inspect_capture": ".capture",
    "add_meter_arguments": ".cli",
    "run_meter": ".cli",
    "MeterConfig": ".config",
    "MeterRun": ".meter",
    "MeterStats": ".meter",
    "flow_columns": ".meter",
    "meter_capture": ".meter",
    "meter_interface": ".meter",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
