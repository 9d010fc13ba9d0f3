"""Checks of detector parameters, run before any work so that a bad value fails in one line.

Each check names the parameter, says what it must be and what it got, and
raises :class:`~flowsentinel.errors.ConfigError`.

>>> positive_int("max_epochs", 3)
3
>>> positive_int("max_epochs", 0)
Traceback (most recent call last):
...
flowsentinel.errors.ConfigError: max_epochs must be a whole number >= 1; got 0
>>> number_in("dropout", 0.2, 0.0, 1.0, high_open=True)
0.2
>>> positive_ints("conv_channels", [8, 16])
(8, 16)
"""

from __future__ import annotations

from typing import Any, Iterable

from ..errors import ConfigError

__all__ = ["positive_int", "nonnegative_int", "number_in", "optional_number_in", "positive_ints", "one_of"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(name: str, value: Any, low: int = 1) -> int:
    """A whole number of at least ``low``."""
    if not _is_int(value) or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}; got {value!r}")
    return int(value)


def nonnegative_int(name: str, value: Any) -> int:
    return positive_int(name, value, 0)


def number_in(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
              high_open: bool = False) -> float:
    """A real number in ``[low, high]`` (ends excluded where asked)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be a number in {span}; got {value!r}")
    return float(value)


def optional_number_in(name: str, value: Any, low: float, high: float, **kw) -> float | None:
    """``None``, or a number as :func:`number_in` checks it."""
    return None if value is None else number_in(name, value, low, high, **kw)


def positive_ints(name: str, value: Any) -> tuple[int, ...]:
    """A non-empty list of whole numbers >= 1 (layer widths, channel counts)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"{name} must be a list of whole numbers >= 1, e.g. [8, 16]; got {value!r}")
    items = tuple(value)
    if not items or not all(_is_int(v) and v >= 1 for v in items):
        raise ConfigError(f"{name} must be a list of whole numbers >= 1, e.g. [8, 16]; got {value!r}")
    return tuple(int(v) for v in items)


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value
