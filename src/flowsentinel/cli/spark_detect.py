"""``flowsentinel spark-detect``: score flow archives on Apache Spark; verdicts as Parquet, alerts as EVE."""

from __future__ import annotations

import argparse
import json
import sys

from ..choices import SUPPRESS_KEYS
from ..errors import UsageError
from ._common import add_model_argument, model_dir_of

NAME = "spark-detect"
HELP = "score flow archives (CSV, CSV.gz, Parquet; local or Hadoop/S3 URIs) on Apache Spark"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..spark.job import ALERT_FORMATS, PARTITION_BY

    p.add_argument("inputs", nargs="+", metavar="INPUT", help="flow files, folders or globs")
    p.add_argument("output", metavar="OUTPUT", help="folder for verdicts/ (Parquet), rejects/ (CSV) and alerts/ (EVE)")
    add_model_argument(p)
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting (repeatable)")
    p.add_argument("--format", choices=ALERT_FORMATS, default="jsonl", help="alert records (default jsonl: EVE)")
    p.add_argument("--partition-by", choices=PARTITION_BY, default="auto",
                   help="verdict partitions: flow day, source file, or auto (day where flows have times)")
    p.add_argument("--batch-rows", type=int, default=20_000, help="rows per Arrow batch handed to Python")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per Python worker (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    p.add_argument("--summary", help="also write the summary as JSON here (a local file)")
    a = p.add_argument_group("alert records (as detect; see docs/alerts.md)")
    a.add_argument("--sensor", help="EVE 'host' (default: the driver's host name)")
    a.add_argument("--community-id-seed", type=int, default=0)
    a.add_argument("--suppress-window", type=float, default=60.0)
    a.add_argument("--suppress-by", choices=SUPPRESS_KEYS, default="source_class")
    a.add_argument("--no-suppress", action="store_true", help="write every alert")


def _conf(items: list[str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf {item!r}: expected KEY=VALUE, e.g. spark.executor.memory=4g")
        out.append((key.strip(), value))
    return out


def run(args: argparse.Namespace) -> int:
    from ..alerting.suppress import SuppressConfig
    from ..spark import SparkDetectConfig, spark_detect, spark_session

    config = SparkDetectConfig(
        inputs=tuple(args.inputs), output=args.output, model_dir=model_dir_of(args), fmt=args.format,
        partition_by=args.partition_by, sensor=args.sensor, community_id_seed=args.community_id_seed,
        suppress=SuppressConfig(window_s=args.suppress_window, key=args.suppress_by, enabled=not args.no_suppress),
        batch_rows=args.batch_rows, threads=args.threads, overwrite=args.overwrite)
    spark = spark_session(args.master, _conf(args.conf))
    summary = spark_detect(spark, config)
    print(f"spark-detect: {summary.text()}", file=sys.stderr)
    if args.summary:
        from ..io.outputs import write_text

        write_text(args.summary, json.dumps(summary.as_dict(), indent=2))
    return 0
