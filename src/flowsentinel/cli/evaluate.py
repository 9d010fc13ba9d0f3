"""``flowsentinel evaluate``: score every flow of a labelled file and write metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..choices import BACKENDS
from ._common import add_model_argument, load_detector, model_dir_of, print_result

NAME = "evaluate"
HELP = "score every flow of a labelled file and write metrics"


def add_arguments(e: argparse.ArgumentParser) -> None:
    add_model_argument(e)
    e.add_argument("--data", required=True, action="append", metavar="SOURCE",
                   help="a labelled source, repeatable (flow file, labels file, FOLDER=LABEL; see docs/sources.md)")
    e.add_argument("--report-dir", help="default MODEL_DIR/evaluation (reports/evaluation for the shipped model)")
    e.add_argument("--backend", choices=BACKENDS)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.report import write_report
    from ..models.registry import short_name
    from ..training.experiment import evaluate, load_dataset

    detector = load_detector(model_dir_of(args), args.backend)
    # Beside a model of the user's; the shipped model's folder is the package's, not a place for reports.
    report_dir = Path(args.report_dir or (Path(args.model_dir) / "evaluation" if args.model_dir else "reports/evaluation"))
    from ..io.outputs import check_output_dir

    check_output_dir(report_dir)  # before any flow is read
    data = load_dataset(args.data, rejects_dir=report_dir)
    detector.check_columns(data.flows.columns, str(args.data))
    manifest = detector.manifest_
    majority = manifest.get("training_data", {}).get("majority_class")
    task = manifest.get("task") or "multiclass"
    metrics, curve = evaluate(detector, data.flows, task, majority)
    name = short_name(detector)
    result = {
        "title": f"{name} on {', '.join(Path(str(d)).name for d in args.data)}",
        "data": data.description,
        "synthetic": data.synthetic,
        "task": task,
        "model": f"{model_dir_of(args)} ({manifest['estimator']} {name})",
        "model_name": name,
        "sources": data.counts_table(),
        "metrics": metrics,
        "references": {},
        "n_rejected": data.info.get("n_rejected", 0),
    }
    files = write_report(report_dir, result, {name: curve})
    print_result(result)
    print(f"metrics: {files['metrics']}")
    return 0
