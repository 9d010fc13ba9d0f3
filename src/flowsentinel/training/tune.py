"""Hyperparameter search for the CNN-BiLSTM with Optuna (``flowsentinel tune``).

Each trial trains the CNN-BiLSTM on the training split of the configured
protocol and scores it by its best validation macro-F1 (the metric early
stopping watches). The study uses TPE sampling and median pruning on the
per-epoch validation macro-F1, stops starting trials when the time budget is
spent (and cuts a running trial short at the budget), and lives in a SQLite
file: running again with the same storage and study name continues it.

The best trial is written as a TOML config whose ``[model]`` table
:func:`flowsentinel.config.load_config` reads back, so ``flowsentinel train
--config tuned.toml`` trains the chosen network.

>>> TuneConfig(n_trials=5, timeout_s=600).storage
'sqlite:///.optuna/flowsentinel.db'
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from ..config import ExperimentConfig

# torch, pandas and Optuna are imported where used: the command line builds
# this module's arguments on every start and must stay quick.

__all__ = [
    "TuneConfig",
    "TuneResult",
    "PruningCallback",
    "suggest_params",
    "tune",
    "write_config_toml",
]

log = logging.getLogger(__name__)

#: Convolution stacks the search picks from, by name (Optuna's categorical
#: choices must be plain values, not tuples).
CONV_STACKS = {"16": (16,), "32": (32,), "16-32": (16, 32), "32-64": (32, 64)}
MONITOR = "f1_macro"


@dataclass(frozen=True)
class TuneConfig:
    """How the search runs.

    Attributes:
        n_trials: trials to add in this run (a resumed study keeps its old ones).
        timeout_s: wall-clock budget of this run in seconds; no new trial
            starts after it, and a running trial stops at its end of epoch
            (``None``: no budget).
        storage: Optuna storage URL; the default SQLite file makes the study
            resumable. The folder of a relative ``sqlite:///`` path is created.
        study_name: the study inside the storage; same name, same study.
        out_config: where the best config is written (TOML).
        max_epochs: epochs per trial (short trials; the written config keeps
            the run's own ``max_epochs``).
        startup_trials: random trials before TPE models the results and
            before any pruning.
        warmup_epochs: epochs every trial runs before it can be pruned.
        seed: sampler seed (offset by the study's trial count on resume, so a
            resumed study does not repeat its first random trials).
    """

    n_trials: int = 20
    timeout_s: float | None = None
    storage: str = "sqlite:///.optuna/flowsentinel.db"
    study_name: str = "cnn-bilstm"
    out_config: str = "tuned.toml"
    max_epochs: int = 8
    startup_trials: int = 5
    warmup_epochs: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.n_trials < 1:
            raise ConfigError(f"n_trials must be at least 1, got {self.n_trials}")
        if self.max_epochs < 1:
            raise ConfigError(f"max_epochs must be at least 1, got {self.max_epochs}")
        if "://" not in self.storage:
            raise ConfigError(f"storage must be an Optuna storage URL such as sqlite:///study.db, got {self.storage!r}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be positive (or None for no budget), got {self.timeout_s}")


@dataclass
class TuneResult:
    study_name: str
    storage: str
    n_trials: int
    n_complete: int
    n_pruned: int
    best_value: float | None
    best_params: dict[str, Any]
    best_model: dict[str, Any]
    config_path: str | None
    seconds: float

    def summary(self) -> str:
        """What a run found, as lines of text for the command line."""
        lines = [f"study {self.study_name!r} ({self.storage}): {self.n_trials} trials, "
                 f"{self.n_complete} complete, {self.n_pruned} pruned, {self.seconds:.0f} s this run"]
        if self.config_path is None:
            return "\n".join(lines + ["no trial completed: no config written"])
        lines += [f"best validation {MONITOR}: {self.best_value:.4f}",
                  f"best model: {_describe(self.best_model)}",
                  f"config: {self.config_path}  (train with: flowsentinel train --config {self.config_path})"]
        return "\n".join(lines)


def suggest_params(trial) -> dict[str, Any]:
    """One point of the search space, as CNN-BiLSTM constructor arguments."""
    return {
        "conv_channels": CONV_STACKS[trial.suggest_categorical("conv_channels", list(CONV_STACKS))],
        "kernel_size": trial.suggest_categorical("kernel_size", [3, 5]),
        "pool": trial.suggest_categorical("pool", [2, 4, 8]),
        "lstm_hidden": trial.suggest_categorical("lstm_hidden", [16, 32, 64]),
        "dense": trial.suggest_categorical("dense", [32, 64, 128]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [256, 512, 1024]),
        "class_weight": trial.suggest_categorical("class_weight", ["sqrt", "balanced", "none"]),
    }


def _model_params(params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's stored params (plain values) as constructor arguments."""
    out = dict(params)
    if "conv_channels" in out:
        out["conv_channels"] = CONV_STACKS[out["conv_channels"]]
    return out


class PruningCallback:
    """Reports validation macro-F1 to the trial each epoch; stops a pruned or over-budget trial.

    A :class:`~flowsentinel.models.loop.Callback` by its hooks (not by
    inheritance, which would import torch with this module). Stopping rather
    than raising lets the training loop finish its own callbacks; the
    objective raises ``TrialPruned`` afterwards.
    """

    def __init__(self, trial, monitor: str = MONITOR, deadline: float | None = None):
        self.trial, self.monitor, self.deadline = trial, monitor, deadline
        self.pruned_at: int | None = None
        self.out_of_time = False

    def on_train_begin(self, trainer) -> None:
        pass

    def on_batch_end(self, trainer, n_rows: int, loss: float) -> None:
        pass

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        pass

    def on_train_end(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, record):
        value = float(record.val_metrics.get(self.monitor, float("nan")))
        self.trial.report(value, record.epoch)
        if self.trial.should_prune():
            self.pruned_at = record.epoch
            trainer.stop = True
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            self.out_of_time = True
            trainer.stop = True


def _prepare_storage(storage: str) -> None:
    prefix = "sqlite:///"
    if storage.startswith(prefix) and storage != prefix + ":memory:":
        Path(storage[len(prefix):]).parent.mkdir(parents=True, exist_ok=True)


def _split(cfg: ExperimentConfig, flows: pd.DataFrame | None):
    from .experiment import Dataset, load_dataset, prepare

    if flows is None:
        data = load_dataset(cfg.run.data, synthetic_flows=cfg.run.synthetic_flows, seed=cfg.run.seed,
                            max_rows=cfg.run.max_rows, base=cfg.run.data_base)
    else:
        data = Dataset(flows, "flows passed in", False, {"n_flows": len(flows)})
    prepared = prepare(data, task=cfg.run.task, protocol=cfg.run.protocol, seed=cfg.run.seed,
                       fractions=cfg.run.fractions, features=cfg.features,
                       balance=cfg.run.balance)
    log.info("tuning on %s: %s split, %d train and %d validation flows", data.description, prepared.protocol,
             len(prepared.train), len(prepared.val))
    return prepared.train, prepared.val


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} to a config")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to a TOML config")


def write_config_toml(cfg: ExperimentConfig, path: str | Path, header: str = "") -> Path:
    """Write ``cfg`` as a TOML file that :func:`~flowsentinel.config.load_config` reads back.

    Unset values (``None``) are left out, so they keep their defaults.

    >>> import tempfile, os
    >>> from flowsentinel.config import ExperimentConfig, load_config
    >>> path = os.path.join(tempfile.mkdtemp(), "c.toml")
    >>> _ = write_config_toml(ExperimentConfig(model={"conv_channels": (16, 32), "dropout": 0.1}), path)
    >>> load_config(path).model
    {'conv_channels': (16, 32), 'dropout': 0.1}
    """
    path = Path(path)
    lines = [f"# {line}" for line in header.splitlines()]
    from ..config import portable_data

    sections = cfg.to_dict()
    run = sections["run"]
    run["data"] = portable_data(run.get("data") or (), run.pop("data_base", None))
    for section, values in sections.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).lstrip("\n") + "\n")
    return path


def tune(cfg: ExperimentConfig, tune_cfg: TuneConfig = TuneConfig(), flows: pd.DataFrame | None = None) -> TuneResult:
    """Search the CNN-BiLSTM's hyperparameters; write the best config; return a summary.

    ``flows`` (labelled) replaces the dataset that ``cfg.run`` names. The
    fixed ``cfg.model`` values (``mode``, ``window``, ``num_threads`` ...)
    apply to every trial; searched values override them.
    """
    import optuna

    t0 = time.monotonic()
    deadline = None if tune_cfg.timeout_s is None else t0 + tune_cfg.timeout_s
    train, val = _split(cfg, flows)
    _prepare_storage(tune_cfg.storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own per-trial lines instead
    existing = _count_trials(tune_cfg.storage, tune_cfg.study_name)
    sampler = optuna.samplers.TPESampler(n_startup_trials=tune_cfg.startup_trials, seed=tune_cfg.seed + existing)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=tune_cfg.startup_trials, n_warmup_steps=tune_cfg.warmup_epochs)
    study = optuna.create_study(storage=tune_cfg.storage, study_name=tune_cfg.study_name, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    if existing:
        log.info("resuming study %r in %s: %d trials so far", tune_cfg.study_name, tune_cfg.storage, existing)
    from ..models.deep import preset

    fixed = {"task": cfg.run.task, "random_state": cfg.run.seed, "feature_config": cfg.features, **cfg.model,
             "max_epochs": tune_cfg.max_epochs, "verbose": False}
    fixed.pop("network", None)

    def objective(trial) -> float:
        pruning = PruningCallback(trial, MONITOR, deadline)
        detector = preset("cnn-bilstm", **{**fixed, **suggest_params(trial)}, callbacks=(pruning,))
        detector.fit(train, X_val=val)
        scores = [h[f"val_{MONITOR}"] for h in detector.history_]
        trial.set_user_attr("epochs", len(scores))
        trial.set_user_attr("fit_seconds", round(detector.fit_seconds_, 2))
        if pruning.pruned_at is not None:
            raise optuna.TrialPruned(f"pruned after epoch {pruning.pruned_at}")
        if pruning.out_of_time:
            log.info("trial %d stopped at the time budget after %d epochs", trial.number, len(scores))
        return float(max(scores))

    def progress(study, trial) -> None:
        state = trial.state.name.lower()
        seconds = trial.user_attrs.get("fit_seconds", float("nan"))
        value = "" if trial.value is None else f" {MONITOR} {trial.value:.4f},"
        best = ""
        if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
            best = f" best {study.best_value:.4f} (trial {study.best_trial.number})"
        log.info("trial %d %s:%s %s epochs, %.1f s;%s; %s", trial.number, state, value,
                 trial.user_attrs.get("epochs", "?"), seconds, best, _describe(trial.params))

    timeout = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
    study.optimize(objective, n_trials=tune_cfg.n_trials, timeout=timeout, callbacks=[progress], catch=())
    states = [t.state for t in study.trials]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    result = TuneResult(
        study_name=tune_cfg.study_name,
        storage=tune_cfg.storage,
        n_trials=len(study.trials),
        n_complete=len(complete),
        n_pruned=sum(s == optuna.trial.TrialState.PRUNED for s in states),
        best_value=study.best_value if complete else None,
        best_params=dict(study.best_params) if complete else {},
        best_model={},
        config_path=None,
        seconds=time.monotonic() - t0,
    )
    if not complete:
        log.warning("no trial of study %r completed: no config written", tune_cfg.study_name)
        return result
    best_model = {**cfg.model, **_model_params(study.best_params)}
    result.best_model = best_model
    header = (f"CNN-BiLSTM config chosen by 'flowsentinel tune': study {tune_cfg.study_name!r} in {tune_cfg.storage},\n"
              f"trial {study.best_trial.number} of {len(study.trials)}, validation {MONITOR} {study.best_value:.4f} "
              f"({tune_cfg.max_epochs}-epoch trials, {cfg.run.protocol} protocol).")
    out = write_config_toml(dataclasses.replace(cfg, model=best_model), tune_cfg.out_config, header)
    result.config_path = str(out)
    log.info("best config written to %s", out)
    return result


def _count_trials(storage: str, study_name: str) -> int:
    import optuna

    try:
        return len(optuna.load_study(study_name=study_name, storage=storage).trials)
    except KeyError:  # no such study yet
        return 0


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
