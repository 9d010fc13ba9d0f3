"""Run configuration: a TOML file plus command-line overrides.

Three tables, each with documented defaults:

* ``[run]`` (:class:`RunConfig`): data, task, protocol, seed, references;
* ``[model]``: parameters of the detector (see
  :class:`~flowsentinel.models.deep.CNNBiLSTMDetector`; unset keys keep the
  estimator's own defaults);
* ``[features]`` (:class:`~flowsentinel.features.FeatureConfig`).

Overrides are ``section.key=value`` with a TOML value:

>>> cfg = load_config(None, ["model.dropout=0.3", "run.protocol='dedup'", "features.include_ports=true"])
>>> cfg.model["dropout"], cfg.run.protocol, cfg.features.include_ports
(0.3, 'dedup', True)
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError
from .features import FeatureConfig
from .paths import data_dir, data_file

__all__ = ["RunConfig", "ExperimentConfig", "ConfigError", "load_config", "data_dir", "default_dataset", "DEFAULT_SAMPLE"]

DEFAULT_SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"


@dataclass(frozen=True)
class RunConfig:
    """What to train on and how to evaluate.

    Attributes:
        data: flow file; ``None`` uses the NF-BoT-IoT-v2 sample under the
            data folder, or synthetic flows when that is absent.
        task: ``multiclass`` (attack type) or ``binary``.
        protocol: ``paper`` (stratified random 70/15/15 of all rows) or
            ``dedup`` (identical feature vectors removed first).
        seed: splits, weights and shuffling.
        fractions: train/validation/test shares.
        max_rows: read only the first N valid rows (quick runs).
        references: models trained on the same split and printed beside
            the CNN-BiLSTM (``extratrees``; empty for none).
        synthetic_flows: flows to generate when no data is available.
        backend: ``torch`` (``mindspore`` where installed).
    """

    data: str | None = None
    task: str = "multiclass"
    protocol: str = "paper"
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    max_rows: int | None = None
    references: tuple[str, ...] = ("extratrees",)
    synthetic_flows: int = 20_000
    backend: str = "torch"

    def __post_init__(self):
        if self.task not in ("multiclass", "binary"):
            raise ConfigError(f"run.task must be 'multiclass' or 'binary', got {self.task!r}")
        if self.protocol not in ("paper", "dedup"):
            raise ConfigError(f"run.protocol must be 'paper' or 'dedup', got {self.protocol!r}")
        if len(self.fractions) != 3 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ConfigError(f"run.fractions must be three shares summing to 1, got {self.fractions!r}")


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


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: take it as a string


def _build(section: str, cls: type, values: dict[str, Any]):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"[{section}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(names)}")
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**fixed)
    except TypeError as exc:
        raise ConfigError(f"[{section}]: {exc}") from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read a TOML config (optional) and apply ``section.key=value`` overrides."""
    raw: dict[str, dict[str, Any]] = {"run": {}, "model": {}, "features": {}}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        for section, values in data.items():
            if section not in raw or not isinstance(values, dict):
                raise ConfigError(f"{path}: unknown section [{section}]; expected [run], [model], [features]")
            raw[section].update(values)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in raw:
            raise ConfigError(f"override {item!r}: expected section.key=value with section run, model or features")
        raw[section][name] = _parse_value(value.strip())
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in raw["model"].items()}
    from .models.deep import CNNBiLSTMDetector

    allowed = set(CNNBiLSTMDetector().get_params())
    unknown = sorted(set(model) - allowed)
    if unknown:
        raise ConfigError(f"[model]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    return ExperimentConfig(_build("run", RunConfig, raw["run"]), model, _build("features", FeatureConfig, raw["features"]))


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
    if getattr(args, "data", None):
        out.append(f"run.data={json.dumps(str(args.data))}")
    if getattr(args, "mode", None):
        out.append(f"model.mode={json.dumps(args.mode)}")
    return out


def default_dataset() -> Path | None:
    """The NF-BoT-IoT-v2 sample, if the data folder has it."""
    return data_file(DEFAULT_SAMPLE)
