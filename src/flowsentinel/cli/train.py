"""``flowsentinel train``: train, evaluate on the protocol's held-out split, save the model."""

from __future__ import annotations

import argparse

from ..choices import BACKENDS, MODES, PROTOCOLS, TASKS
from ._common import (
    TRAIN_MODEL_DIR,
    add_config_arguments,
    config_from_args,
    print_result,
)

NAME = "train"
HELP = "train and evaluate on a flow file, save the model"


def add_arguments(t: argparse.ArgumentParser) -> None:
    t.add_argument("--data", action="append", metavar="SOURCE",
                   help="a labelled source, repeatable: an NF flow file (CSV, CSV.gz, Parquet), a labels file of "
                        "captures, or FOLDER=LABEL (see docs/sources.md); default: the shared NF-BoT-IoT-v2 sample, "
                        "else synthetic flows")
    t.add_argument("--model-dir", default=TRAIN_MODEL_DIR, help=f"where to save the model (default {TRAIN_MODEL_DIR})")
    t.add_argument("--report-dir", help="where to write the report (default MODEL_DIR/report)")
    t.add_argument("--task", choices=TASKS)
    t.add_argument("--protocol", choices=PROTOCOLS)
    t.add_argument("--mode", choices=MODES, help="per-flow or windowed input")
    t.add_argument("--backend", choices=BACKENDS)
    t.add_argument("--epochs", type=int, help="maximum epochs")
    t.add_argument("--seed", type=int)
    t.add_argument("--max-rows", type=int, help="use only the first N valid flows")
    add_config_arguments(t)
    t.add_argument("--no-reference", action="store_true", help="skip the Extra Trees reference")


def run(args: argparse.Namespace) -> int:
    from ..io.outputs import check_output_dir
    from ..training.distributed import DistributedContext, train_distributed
    from ..training.run import train_and_evaluate

    cfg = config_from_args(args)
    for folder in (args.model_dir, args.report_dir):
        if folder:
            check_output_dir(folder)  # refused before training, not after
    context = DistributedContext.from_env()  # one of several processes started by torchrun
    if context is not None:
        result = train_distributed(cfg, args.model_dir, args.report_dir, context)
        if result is None:  # rank 0 reports
            return 0
    else:
        result = train_and_evaluate(cfg, args.model_dir, args.report_dir)
    print_result(result)
    if result.get("files"):
        print(f"report: {result['files']['report']}")
    print(f"model: {args.model_dir}")
    return 0
