"""``flowsentinel crosseval``: train on one set of sources, test on another, models side by side."""

from __future__ import annotations

import argparse

from ._common import add_config_arguments, config_from_args

NAME = "crosseval"
HELP = "cross-dataset evaluation: train on some sources, test on others, CNN-BiLSTM beside Extra Trees"


def add_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("--scenarios", default=None,
                   help="TOML file of [[scenario]] tables (default: configs/scenarios/crosseval.toml in the checkout)")
    c.add_argument("--models", default="cnn-bilstm,extratrees", help="comma-separated short names")
    c.add_argument("--epochs", type=int, help="maximum epochs of the deep models")
    c.add_argument("--out-dir", default="reports/crosseval", help="where the table goes (default reports/crosseval)")
    add_config_arguments(c)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..paths import checkout_root
    from ..training.crosseval import load_scenarios, markdown_table, run_crosseval

    path = args.scenarios
    if path is None:
        root = checkout_root()
        if root is None:
            raise ConfigError("crosseval: give --scenarios FILE (no checkout with configs/scenarios/crosseval.toml here)")
        path = root / "configs" / "scenarios" / "crosseval.toml"
    cfg = config_from_args(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    result = run_crosseval(load_scenarios(path), cfg, models, args.out_dir, epochs=args.epochs)
    print(markdown_table(result))
    print(f"written: {', '.join(result['files'].values())}")
    return 0
