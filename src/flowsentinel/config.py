"""Run configuration: a TOML file plus command-line overrides.

Three tables, each with documented defaults:

* ``[run]`` (:class:`RunConfig`): data, task, protocol, seed, references;
* ``[model]``: the detector: ``network`` (default ``cnn-bilstm``; see
  :mod:`flowsentinel.models.presets`) and its settings, flat: training
  settings of :class:`~flowsentinel.models.deep.DeepDetector` and the
  network's own (``conv_channels``, ``lstm_hidden`` ...); unset keys keep
  their defaults;
* ``[features]`` (:class:`~flowsentinel.features.FeatureConfig`).

Every value is checked when the config is loaded, before any data is read:
an unknown key, a value of the wrong type or out of range is a
:class:`~flowsentinel.errors.ConfigError` naming the key.

Overrides are ``section.key=value`` with a TOML value:

>>> cfg = load_config(None, ["model.dropout=0.3", "run.protocol='dedup'", "features.include_ports=true"])
>>> cfg.model["dropout"], cfg.run.protocol, cfg.features.include_ports
(0.3, 'dedup', True)
>>> load_config(None, ["run.seed='x'"])
Traceback (most recent call last):
...
flowsentinel.errors.ConfigError: [run] seed: must be a whole number; got 'x'
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .choices import BACKENDS, PROTOCOLS, TASKS, check_choice
from .errors import ConfigError
from .features import FeatureConfig

__all__ = ["RunConfig", "ExperimentConfig", "ConfigError", "load_config", "overrides_from_args", "build_detector",
           "build_reference", "portable_data"]


@dataclass(frozen=True)
class RunConfig:
    """What to train on and how to evaluate.

    Attributes:
        data: the labelled sources to train on, each a spec string or table
            (``docs/sources.md``: NF flow files of any dataset, labels files
            of captures, folders of captures with one label); empty uses the
            NF-BoT-IoT-v2 sample under the data folder, or synthetic flows
            when that is absent.
        data_base: the folder relative paths of ``data`` are read from (the
            config file's folder for specs written in it; ``None``: as given).
        task: ``multiclass`` (attack type) or ``binary``.
        protocol: ``paper`` (stratified random 70/15/15 of all rows),
            ``dedup`` (identical feature vectors removed first) or ``group``
            (whole captures and devices on one side).
        seed: splits, weights and shuffling.
        fractions: train/validation/test shares.
        max_rows: read only the first N valid rows (quick runs).
        references: models trained on the same split, at the same threshold
            policy, and printed beside the detector (``extratrees``; empty for none).
        synthetic_flows: flows to generate when no data is available.
        backend: ``torch`` (``mindspore`` where installed).
        balance: ``(low, high)``: in the training part only, each source's
            class is drawn down to at most ``high`` flows and repeated up to
            at least ``low`` (so that the few attack flows of one dataset
            are not lost beside another's floods); ``None`` keeps every row.
    """

    data: tuple[Any, ...] = ()
    data_base: str | None = None
    task: str = "multiclass"
    protocol: str = "paper"
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    max_rows: int | None = None
    references: tuple[str, ...] = ("extratrees",)
    synthetic_flows: int = 20_000
    backend: str = "torch"
    balance: tuple[int, int] | None = None

    def __post_init__(self):
        check_choice("run.task", self.task, TASKS)
        check_choice("run.protocol", self.protocol, PROTOCOLS)
        check_choice("run.backend", self.backend, BACKENDS)
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-6 or min(self.fractions) < 0:
            raise ConfigError(f"run.fractions must be three shares >= 0 summing to 1, got {self.fractions!r}")
        if self.fractions[0] <= 0 or self.fractions[2] <= 0:
            raise ConfigError(f"run.fractions: the training and test shares must be above 0, got {self.fractions!r}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ConfigError(f"run.max_rows must be at least 1 (or unset for all rows), got {self.max_rows}")
        if self.balance is not None and not (0 <= self.balance[0] <= self.balance[1] and self.balance[1] >= 1):
            raise ConfigError(f"run.balance must be [low, high] with 0 <= low <= high and high >= 1, got {self.balance!r}")
        if self.synthetic_flows < 100:
            raise ConfigError(f"run.synthetic_flows must be at least 100, got {self.synthetic_flows}")


@dataclass(frozen=True)
class ExperimentConfig:
    run: RunConfig = RunConfig()
    model: dict[str, Any] = field(default_factory=dict)
    features: FeatureConfig = FeatureConfig()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": dataclasses.asdict(self.run),
            "model": dict(self.model),
            "features": dataclasses.asdict(self.features),
        }


def _parse_value(text: str, where: str) -> Any:
    """An override's value as TOML; ``where`` (``[model] dropout``) names the key in the error."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text[:1] in "[{\"'":
            raise ConfigError(f"{where}: cannot read {text!r} as a TOML value (a list, string or table that is not "
                              "closed?)") from None
        return text  # a bare word: take it as a string


def _coerce(where: str, hint: Any, value: Any) -> Any:
    """``value`` checked against a dataclass field's type; lists become tuples."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(where, option, value)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be a whole number; got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number; got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string; got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: must be a list, e.g. [{'...'}]; got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{where}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: must be a list of {len(args)} values; got {value!r}")
        return tuple(_coerce(f"{where}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
    return value


def _build(section: str, cls: type, values: dict[str, Any]):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"[{section}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    fixed = {k: _coerce(f"[{section}] {k}", hints[k], v) for k, v in values.items()}
    try:
        return cls(**fixed)
    except TypeError as exc:
        raise ConfigError(f"[{section}]: {exc}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a TOML config is UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read a TOML config (optional), apply ``section.key=value`` overrides, check every value."""
    raw: dict[str, dict[str, Any]] = {"run": {}, "model": {}, "features": {}}
    if path is not None:
        path = Path(path)
        for section, values in _read_toml(path).items():
            if section not in raw or not isinstance(values, dict):
                raise ConfigError(f"{path}: unknown section [{section}]; expected [run], [model], [features]")
            raw[section].update(values)
        if raw["run"].get("data"):
            raw["run"]["data_base"] = str(path.parent)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in raw or not name:
            raise ConfigError(f"override {item!r}: expected section.key=value with section run, model or features")
        raw[section][name] = _parse_value(value.strip(), f"[{section}] {name}")
        if (section, name) == ("run", "data"):
            raw["run"].pop("data_base", None)  # specs given on the command line are read as given
    if isinstance(raw["run"].get("data"), (str, dict)):
        raw["run"]["data"] = [raw["run"]["data"]]
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["model"].items()}
    cfg = ExperimentConfig(_build("run", RunConfig, raw["run"]), model, _build("features", FeatureConfig, raw["features"]))
    _check_exclude(cfg.features.exclude)
    try:
        build_detector(cfg).check_params()
    except ConfigError as exc:
        raise ConfigError(f"[model] {exc}") from None
    return cfg


def _check_exclude(names: Iterable[str]) -> None:
    """``[features] exclude`` names NF feature columns; a name that is none of them (a typo) would
    leave the column it meant among the model's inputs.

    >>> _check_exclude(["IN_BYTES"])
    >>> _check_exclude(["IN_BYTE"])
    Traceback (most recent call last):
    ...
    flowsentinel.errors.ConfigError: [features] exclude: 'IN_BYTE' is not an NF feature column (did you mean IN_BYTES?)
    """
    import difflib

    from .schema import SCHEMAS

    known = sorted({c for schema in SCHEMAS.values() for c in schema.features})
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else "; the columns are those of the NF v1, v2 and v3 schemas in flowsentinel.schema"
            raise ConfigError(f"[features] exclude: {name!r} is not an NF feature column{hint}")


def portable_data(data: Iterable[Any], base: str | None) -> list[Any]:
    """Source specs with relative paths made absolute (from ``base``, else the current directory),
    so that a config written elsewhere reads the same files.

    >>> portable_data(["data:pcaps/labels.csv", "/abs/f.csv", "rel.csv,max_rows=5"], "/work")
    ['data:pcaps/labels.csv', '/abs/f.csv', '/work/rel.csv,max_rows=5']
    """
    root = Path(base) if base else Path.cwd()

    def fix(path: str) -> str:
        if path.startswith("data:") or Path(path).expanduser().is_absolute():
            return path
        return str(root / path)

    out = []
    for spec in data:
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            out.append({**spec, "path": fix(spec["path"])})
        elif isinstance(spec, str):
            head, sep, rest = spec.partition(",")
            out.append(fix(head) + sep + rest)
        else:
            out.append(spec)
    return out


def overrides_from_args(args: Any) -> list[str]:
    """``--set`` values plus the command-line options that stand for config keys.

    Options a command does not have, or left unset, add nothing.

    >>> import argparse
    >>> overrides_from_args(argparse.Namespace(set=["model.dropout=0.3"], task="binary", mode="window"))
    ['model.dropout=0.3', 'run.task="binary"', 'model.mode="window"']
    """
    import json

    out = list(getattr(args, "set", None) or [])
    for key in ("task", "protocol", "backend", "seed", "max_rows"):
        value = getattr(args, key, None)
        if value is not None:
            out.append(f"run.{key}={json.dumps(value)}")
    data = getattr(args, "data", None)
    if data:
        out.append(f"run.data={json.dumps([str(d) for d in data] if isinstance(data, (list, tuple)) else [str(data)])}")
    if getattr(args, "mode", None):
        out.append(f"model.mode={json.dumps(args.mode)}")
    return out


def build_detector(cfg: ExperimentConfig):
    """The detector a config asks for: ``[model] network`` (default the CNN-BiLSTM) with its settings."""
    from .models.registry import make_detector

    model = dict(cfg.model)
    name = model.pop("network", "cnn-bilstm")
    if not isinstance(name, str):
        raise ConfigError(f"[model] network must be a model's name, e.g. \"cnn-bilstm\"; got {name!r}")
    params = {"task": cfg.run.task, "random_state": cfg.run.seed, "feature_config": cfg.features, **model}
    from .models.presets import NETWORKS

    if name in NETWORKS:
        params.setdefault("backend", cfg.run.backend)
    return make_detector(name, **params)


def build_reference(name: str, cfg: ExperimentConfig):
    """A reference model for the same run: same task, seed, features and threshold policy."""
    from .models.registry import make_detector

    params = {"task": cfg.run.task, "random_state": cfg.run.seed, "feature_config": cfg.features}
    for key in ("threshold", "target_far"):
        if cfg.model.get(key) is not None:
            params[key] = cfg.model[key]
    return make_detector(name, **params)
