"""``flowsentinel tune``: an Optuna search over the CNN-BiLSTM's hyperparameters."""

from __future__ import annotations

import argparse

NAME = "tune"
HELP = "search the CNN-BiLSTM's hyperparameters with Optuna and write the best config"


def add_arguments(t: argparse.ArgumentParser) -> None:
    from ..tuning import add_tune_arguments

    add_tune_arguments(t)


def run(args: argparse.Namespace) -> int:
    from ..tuning import tune_from_args

    result = tune_from_args(args)
    print(result.summary())
    return 0 if result.config_path else 1
