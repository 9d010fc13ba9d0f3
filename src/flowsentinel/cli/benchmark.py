"""``flowsentinel benchmark``: every detector on the same splits, at the same threshold policy, one table."""

from __future__ import annotations

import argparse
from typing import Any

from ..choices import TASKS
from ._common import add_config_arguments

NAME = "benchmark"
HELP = "train and compare every baseline on the same paper and dedup splits"
DEFAULT_OUT_DIR = "reports/benchmark"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..models.registry import SHORT_NAMES

    parser.add_argument("--models", default="all",
                        help=f"comma-separated short names, or all (default): {', '.join(SHORT_NAMES)}")
    parser.add_argument("--data", action="append", metavar="SOURCE",
                        help="a labelled source, repeatable (see docs/sources.md); default: the shared "
                             "NF-BoT-IoT-v2 sample, else synthetic flows")
    parser.add_argument("--protocols", default="paper,dedup", help="comma-separated: paper, dedup (default both)")
    parser.add_argument("--task", choices=TASKS, help="for supervised models (unsupervised ones are always scored as "
                        "binary); default multiclass, or the config's")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-rows", type=int, help="use only the first N valid flows")
    parser.add_argument("--epochs", type=int, help="maximum epochs of every deep model (default: each model's own)")
    parser.add_argument("--n-jobs", type=int, help="threads for tree ensembles, LightGBM, Isolation Forest")
    parser.add_argument("--target-far", type=float, help="threshold policy of every model: flag at most this share "
                        "of benign validation flows (default: the config's, else 0.5 / 1%% for unsupervised models)")
    parser.add_argument("--latency-calls", type=int, default=200, help="single-flow calls for the latency percentiles")
    parser.add_argument("--synthetic-flows", type=int, default=20_000, help="flows to generate when no data is found")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR, help=f"where the table goes (default {DEFAULT_OUT_DIR})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or per-model log lines")
    add_config_arguments(parser)
    return parser


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~flowsentinel.training.benchmark.run_benchmark` arguments of a command line.

    ``--config`` supplies the data, task, seed, fractions, features and
    threshold policy, and its ``[model]`` settings for the network it names;
    options given on the command line win.
    """
    from ..config import load_config, overrides_from_args

    cfg = load_config(args.config, overrides_from_args(argparse.Namespace(
        set=args.set, task=args.task, seed=args.seed, max_rows=args.max_rows, data=args.data)))
    model = dict(cfg.model)
    network = model.pop("network", "cnn-bilstm")
    policy = {k: model.pop(k) for k in ("threshold", "target_far") if k in model}
    if args.target_far is not None:
        policy = {"target_far": args.target_far}
    return dict(
        models=args.models,
        data=cfg.run.data,
        protocols=tuple(p.strip() for p in args.protocols.split(",") if p.strip()),
        task=cfg.run.task,
        seed=cfg.run.seed,
        max_rows=cfg.run.max_rows,
        out_dir=args.out_dir,
        progress=not args.no_progress,
        epochs=args.epochs,
        n_jobs=args.n_jobs,
        model_params={network: model} if model else None,
        features=cfg.features,
        fractions=cfg.run.fractions,
        latency_calls=args.latency_calls,
        synthetic_flows=args.synthetic_flows,
        **policy,
    )


def run(args: argparse.Namespace) -> int:
    from ..training.benchmark import run_benchmark, summary_text

    print(summary_text(run_benchmark(**options(args))))
    return 0
