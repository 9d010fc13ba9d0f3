"""``flowsentinel benchmark``: every detector on the same splits, one table."""

from __future__ import annotations

import argparse

NAME = "benchmark"
HELP = "train and compare every baseline on the same paper and dedup splits"


def add_arguments(b: argparse.ArgumentParser) -> None:
    from ..benchmarking import add_benchmark_arguments

    add_benchmark_arguments(b)


def run(args: argparse.Namespace) -> int:
    from ..benchmarking import benchmark_from_args, summary_text

    print(summary_text(benchmark_from_args(args)))
    return 0
