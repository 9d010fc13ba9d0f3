"""``flowsentinel adapt``: a model adapted to the benign traffic of the network it guards."""

from __future__ import annotations

import argparse

NAME = "adapt"
HELP = "adapt a model to the guarded network's own benign traffic and recalibrate its threshold"


def add_arguments(a: argparse.ArgumentParser) -> None:
    from ..training.adapt import AdaptConfig

    d = AdaptConfig()
    a.add_argument("--model-dir", required=True, help="the model to adapt")
    a.add_argument("--benign", required=True, action="append", metavar="SOURCE",
                   help="the network's own traffic, taken as benign: captures, a folder of them, or flow files "
                        "(repeatable; see docs/sources.md)")
    a.add_argument("--output-dir", required=True, help="where the adapted model goes")
    a.add_argument("--train-data", action="append", metavar="SOURCE",
                   help="the original training sources (default: those in the model's manifest)")
    a.add_argument("--attacks", action="append", metavar="SOURCE",
                   help="labelled attack flows to report detection on (default: the shared check captures)")
    a.add_argument("--target-far", type=float, default=d.target_far,
                   help=f"share of the network's benign flows the threshold may flag (default {d.target_far})")
    a.add_argument("--epochs", type=int, default=d.epochs, help=f"fine-tuning epochs (default {d.epochs})")
    a.add_argument("--seed", type=int, default=d.seed)


def run(args: argparse.Namespace) -> int:
    from ..serving.context import HostContext
    from ..training.adapt import AdaptConfig, adapt_model

    result = adapt_model(args.model_dir, args.benign, args.output_dir,
                         AdaptConfig(target_far=args.target_far, epochs=args.epochs, seed=args.seed),
                         train_data=args.train_data, attacks=args.attacks, beside=HostContext.per_capture)
    print(f"adapted {args.model_dir} -> {result.output_dir}")
    print("flows: " + ", ".join(f"{k} {v:,}" for k, v in result.flows.items()))
    print(result.table())
    return 0
