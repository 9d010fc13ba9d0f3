#!/usr/bin/env python3
"""Every detector on the same ``paper`` and ``dedup`` splits: the README table.

A thin wrapper over :func:`flowsentinel.training.benchmark.run_benchmark` (the same
as ``flowsentinel benchmark``), with the machine it ran on printed above the
table. One run, one table; timings are only comparable within it.

    PYTHONPATH=src python benchmarks/bench_models.py --epochs 3 --n-jobs 2
    PYTHONPATH=src python benchmarks/bench_models.py --models extratrees,pca,dnn --max-rows 20000 --epochs 1
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.cli.benchmark import add_arguments, options  # noqa: E402
from flowsentinel.training.benchmark import run_benchmark, summary_text  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    import torch

    sys.stdout.write(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)\n"
    )
    print(summary_text(run_benchmark(**options(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
