"""``flowsentinel tune``: an Optuna search over the CNN-BiLSTM's hyperparameters."""

from __future__ import annotations

import argparse

from ..choices import MODES, PROTOCOLS, TASKS
from ._common import add_config_arguments

NAME = "tune"
HELP = "search the CNN-BiLSTM's hyperparameters with Optuna and write the best config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..training.tune import TuneConfig

    d = TuneConfig()
    parser.add_argument("--data", action="append", metavar="SOURCE",
                        help="a labelled source, repeatable (see docs/sources.md); default: the shared "
                             "NF-BoT-IoT-v2 sample, else synthetic flows")
    add_config_arguments(parser)
    parser.add_argument("--task", choices=TASKS)
    parser.add_argument("--protocol", choices=PROTOCOLS)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-rows", type=int, help="use only the first N valid flows")
    parser.add_argument("--trials", type=int, default=d.n_trials, help=f"trials to add (default {d.n_trials})")
    parser.add_argument("--timeout", type=float, help="time budget of this run, seconds (default: none)")
    parser.add_argument("--epochs", type=int, default=d.max_epochs, help=f"epochs per trial (default {d.max_epochs})")
    parser.add_argument("--storage", default=d.storage, help=f"Optuna storage URL (default {d.storage})")
    parser.add_argument("--study-name", default=d.study_name, help=f"study to create or resume (default {d.study_name})")
    parser.add_argument("--out", default=d.out_config, help=f"where to write the best config (default {d.out_config})")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config, overrides_from_args
    from ..training.tune import TuneConfig, tune

    cfg = load_config(getattr(args, "config", None), overrides_from_args(args))
    tune_cfg = TuneConfig(n_trials=args.trials, timeout_s=args.timeout, storage=args.storage,
                          study_name=args.study_name, out_config=args.out, max_epochs=args.epochs,
                          seed=cfg.run.seed)
    result = tune(cfg, tune_cfg)
    print(result.summary())
    return 0 if result.config_path else 1
