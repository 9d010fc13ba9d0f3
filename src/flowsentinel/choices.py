"""The closed sets of values that settings take, shared by argparse and validation.

Each set is a ``Literal`` type (for annotations) and the tuple of its values
(for ``argparse`` ``choices=`` and for :func:`check_choice`), so the command
line and the library can never disagree about what is allowed.

>>> check_choice("run.task", "binary", TASKS)
'binary'
>>> check_choice("run.task", "both", TASKS)
Traceback (most recent call last):
...
flowsentinel.errors.ConfigError: run.task must be one of multiclass, binary; got 'both'
"""

from __future__ import annotations

from typing import Literal, get_args

from .errors import ConfigError

__all__ = [
    "Task",
    "Protocol",
    "Backend",
    "Engine",
    "Mode",
    "OutputFormat",
    "TASKS",
    "PROTOCOLS",
    "BACKENDS",
    "ENGINES",
    "MODES",
    "OUTPUT_FORMATS",
    "SuppressKey",
    "SUPPRESS_KEYS",
    "check_choice",
]

#: ``multiclass``: the attack class; ``binary``: attack or benign.
Task = Literal["multiclass", "binary"]
#: ``paper``: stratified random split of all rows; ``dedup``: identical feature
#: vectors collapsed first; ``group``: whole sources (captures, devices) on one side.
Protocol = Literal["paper", "dedup", "group"]
#: The framework a deep detector trains in.
Backend = Literal["torch", "mindspore"]
#: What runs a fitted network's forward pass when scoring.
Engine = Literal["auto", "onnx", "torch"]
#: ``flow``: each flow alone; ``window``: a host's consecutive flows.
Mode = Literal["flow", "window"]
#: Verdict output formats: EVE JSON lines, Elastic Common Schema documents, CSV.
OutputFormat = Literal["jsonl", "ecs", "csv"]
#: What a repeated alert shares with the first one of its suppression window:
#: the source host, or the source host and the predicted class.
SuppressKey = Literal["source", "source_class"]

TASKS: tuple[str, ...] = get_args(Task)
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
BACKENDS: tuple[str, ...] = get_args(Backend)
ENGINES: tuple[str, ...] = get_args(Engine)
MODES: tuple[str, ...] = get_args(Mode)
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
SUPPRESS_KEYS: tuple[str, ...] = get_args(SuppressKey)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a :class:`~flowsentinel.errors.ConfigError` naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value
