"""The ``flowsentinel`` command line: parses arguments and calls the library.

Exit status: 0 on success, 2 on bad input or usage (one line on stderr that
says what to fix), 1 on an unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

__all__ = ["main", "build_parser"]

log = logging.getLogger("flowsentinel")

DEFAULT_MODEL_DIR = "models/cnn-bilstm"


class UsageError(ValueError):
    """The command line asks for something impossible."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from .config import ConfigError
    from .features import MissingColumnsError
    from .io.readers import FlowReadError
    from .persistence import ModelLoadError
    from .schema import SchemaError

    errors: list[type[BaseException]] = [UsageError, ConfigError, MissingColumnsError, FlowReadError,
                                         ModelLoadError, SchemaError, FileNotFoundError, PermissionError,
                                         IsADirectoryError, ValueError]
    try:
        from .metering.capture import MeterError

        errors.append(MeterError)
    except ImportError:  # metering needs nfstream, an optional extra
        pass
    return tuple(errors)


@contextmanager
def _output(path: str | None) -> Iterator:
    if path in (None, "-"):
        yield sys.stdout
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            yield fh


def _config_from_args(args: argparse.Namespace):
    from .config import load_config, overrides_from_args

    overrides = overrides_from_args(args)
    if getattr(args, "epochs", None):
        overrides.append(f"model.max_epochs={args.epochs}")
    if getattr(args, "no_reference", False):
        overrides.append("run.references=[]")
    return load_config(args.config, overrides)


def _print_metrics(result: dict) -> None:
    m = result["metrics"]
    refs = result.get("references", {})
    head = f"{'':34}{'CNN-BiLSTM':>12}" + "".join(f"{n:>12}" for n in refs) + f"{'majority':>12}"
    print(("[SYNTHETIC DATA] " if result.get("synthetic") else "") + result.get("title", ""))
    print(f"data: {result.get('data', '')}; test flows: {m['n_flows']:,}")
    print(head)
    rows = [("accuracy", "accuracy"), ("f1_macro", "F1 macro"), ("f1_weighted", "F1 weighted"),
            ("precision_macro", "precision macro"), ("recall_macro", "recall macro"), ("binary_f1", "binary F1"),
            ("detection_rate", "detection rate"), ("false_alarm_rate", "false-alarm rate"), ("roc_auc", "ROC-AUC"),
            ("pr_auc", "PR-AUC")]

    def f(v):
        return f"{v:12.4f}" if isinstance(v, (int, float)) else f"{'n/a':>12}"

    for key, label in rows:
        base = m.get("majority_baseline_accuracy") if key == "accuracy" else (
            m.get("majority_baseline_f1_macro") if key == "f1_macro" else None)
        print(f"{label:34}{f(m.get(key))}" + "".join(f(r.get(key)) for r in refs.values()) + (f(base) if base is not None else ""))
    print("per class (CNN-BiLSTM):")
    for cls, s in m["per_class"].items():
        extra = "".join(f"  {n} F1 {r.get('per_class', {}).get(cls, {}).get('f1', float('nan')):.4f}" for n, r in refs.items())
        print(f"  {cls:18} P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  n={s['support']:,}{extra}")


def cmd_train(args: argparse.Namespace) -> int:
    from .training.run import train_and_evaluate

    cfg = _config_from_args(args)
    result = train_and_evaluate(cfg, args.model_dir, args.report_dir)
    _print_metrics(result)
    if result.get("files"):
        print(f"report: {result['files']['report']}")
    print(f"model: {args.model_dir}")
    return 0


def _load(model_dir: str, backend: str | None = None):
    if backend == "mindspore":
        from .backends.mindspore import load_mindspore_model

        return load_mindspore_model(model_dir)
    from .persistence import load_model

    return load_model(model_dir)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.report import write_report
    from .training.run import evaluate_model, load_dataset

    detector = _load(args.model_dir, args.backend)
    report_dir = Path(args.report_dir or Path(args.model_dir) / "evaluation")
    data = load_dataset(args.data, rejects_dir=report_dir)
    detector.check_columns(data.flows.columns, str(args.data))
    manifest = detector.manifest_
    majority = manifest.get("training_data", {}).get("majority_class")
    task = manifest.get("task") or "multiclass"
    metrics, curve = evaluate_model(detector, data.flows, task, majority)
    result = {
        "title": f"{manifest['estimator']} on {Path(args.data).name}",
        "data": data.description,
        "synthetic": data.synthetic,
        "task": task,
        "model": f"{args.model_dir} ({manifest['estimator']})",
        "metrics": metrics,
        "references": {},
        "n_rejected": data.info.get("n_rejected", 0),
    }
    files = write_report(report_dir, result, {"model": curve})
    _print_metrics(result)
    print(f"metrics: {files['metrics']}")
    return 0


def _is_capture(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError:
        return False
    return magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a") \
        or path.suffix.lower() in (".pcap", ".pcapng", ".cap")


def cmd_detect(args: argparse.Namespace) -> int:
    from .io.alerts import AlertWriter
    from .serving.detect import detect_file, detect_frames, model_identity

    if bool(args.input) == bool(args.interface):
        raise UsageError("detect: give an INPUT file (flows or capture) or --interface IF, not both and not neither")
    detector = _load(args.model_dir, args.backend)
    if args.backend != "mindspore":
        from .serving.fast import InferenceConfig, fast_detector

        detector = fast_detector(detector, InferenceConfig(engine=args.engine, intra_op_threads=args.threads),
                                 model_dir=args.model_dir)
    progress = not args.no_progress
    with _output(args.output) as out:
        if args.interface or _is_capture(Path(args.input)):
            from .metering import MeterConfig, meter_capture, meter_interface

            config = MeterConfig(idle_timeout=args.idle_timeout, active_timeout=args.active_timeout)
            if args.interface:
                run = meter_interface(args.interface, config, args.max_packets, args.max_seconds)
            else:
                run = meter_capture(args.input, config)
            name, version = model_identity(detector)
            writer = AlertWriter(out, args.format, model_name=name, model_version=version, only_alerts=args.alerts_only)
            frames = run
            if getattr(detector, "mode", "flow") == "window":
                import pandas as pd

                frames = [pd.concat(list(run), ignore_index=True)]
            summary = detect_frames(detector, frames, writer, where=args.input or args.interface, progress=progress)
            print(f"metering: {run.stats.summary()}", file=sys.stderr)
        else:
            summary = detect_file(detector, args.input, out, args.format, only_alerts=args.alerts_only,
                                  progress=progress)
    print(f"detect: {summary.text()}", file=sys.stderr)
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary.as_dict(), indent=2))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .persistence import read_manifest

    manifest = read_manifest(args.model_dir)
    if args.json:
        print(json.dumps(manifest, indent=2))
        return 0
    test = manifest.get("metrics", {}).get("test", {})
    data = manifest.get("training_data", {})
    print(f"model:      {args.model_dir}")
    print(f"estimator:  {manifest['estimator']} ({manifest.get('backend', 'torch')} backend, task {manifest.get('task')})")
    arch = manifest.get("architecture")
    if arch:
        print(f"network:    {arch['network']} {json.dumps(arch['kwargs'])}")
    print(f"created:    {manifest['created']} with flowsentinel {manifest['versions'].get('flowsentinel')}, "
          f"torch {manifest['versions'].get('torch')}")
    print(f"schema:     {manifest['schema']}; {len(manifest['input_columns'])} input columns -> {manifest['n_model_inputs']} model inputs")
    print(f"classes:    {', '.join(manifest['classes'])}; alert threshold {manifest['threshold']}")
    if data:
        synth = " [SYNTHETIC]" if data.get("synthetic") else ""
        print(f"trained on: {data.get('path')}{synth} ({data.get('n_flows', 0):,} flows, sha256 {str(data.get('sha256'))[:16]}...)")
    if test:
        print(f"test ({manifest['metrics'].get('protocol')} protocol, {test.get('n_flows', 0):,} flows): "
              f"accuracy {test['accuracy']:.4f}, F1 macro {test['f1_macro']:.4f}, F1 weighted {test['f1_weighted']:.4f}, "
              f"false-alarm rate {test.get('false_alarm_rate') if test.get('false_alarm_rate') is not None else float('nan'):.4f}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmarking import benchmark_from_args, summary_text

    print(summary_text(benchmark_from_args(args)))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .tuning import tune_from_args

    result = tune_from_args(args)
    print(result.summary())
    return 0 if result.config_path else 1


def cmd_meter(args: argparse.Namespace) -> int:
    from .metering.cli import run_meter

    return run_meter(args)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="flowsentinel", description="CNN-BiLSTM network intrusion detection over NetFlow records.")
    p.add_argument("--version", action="version", version=f"flowsentinel {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train and evaluate on a flow file, save the model")
    t.add_argument("--data", help="flow file (CSV, CSV.gz, Parquet); default: the shared NF-BoT-IoT-v2 sample, else synthetic")
    t.add_argument("--model-dir", default=DEFAULT_MODEL_DIR, help=f"where to save the model (default {DEFAULT_MODEL_DIR})")
    t.add_argument("--report-dir", help="where to write the report (default MODEL_DIR/report)")
    t.add_argument("--task", choices=("multiclass", "binary"))
    t.add_argument("--protocol", choices=("paper", "dedup"))
    t.add_argument("--mode", choices=("flow", "window"), help="per-flow or windowed input")
    t.add_argument("--backend", choices=("torch", "mindspore"))
    t.add_argument("--epochs", type=int, help="maximum epochs")
    t.add_argument("--seed", type=int)
    t.add_argument("--max-rows", type=int, help="use only the first N valid flows")
    t.add_argument("--config", help="TOML config file ([run], [model], [features])")
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value (repeatable)")
    t.add_argument("--no-reference", action="store_true", help="skip the Extra Trees reference")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="score every flow of a labelled file and write metrics")
    e.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    e.add_argument("--data", required=True, help="labelled flow file")
    e.add_argument("--report-dir", help="default MODEL_DIR/evaluation")
    e.add_argument("--backend", choices=("torch", "mindspore"))
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("detect", help="score flows (a flow file, a capture or an interface) and write verdicts")
    d.add_argument("input", nargs="?", help="flow file (CSV, CSV.gz, Parquet) or capture (pcap, pcapng)")
    d.add_argument("--interface", "-i", help="meter and score a live interface")
    d.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    d.add_argument("--output", "-o", help="default: standard output")
    d.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    d.add_argument("--alerts-only", action="store_true", help="write alerts only, not every flow")
    d.add_argument("--summary", help="also write the summary as JSON here")
    d.add_argument("--backend", choices=("torch", "mindspore"))
    d.add_argument("--engine", choices=("auto", "onnx", "torch"), default="auto",
                   help="network engine (default auto: ONNX Runtime where installed, else PyTorch)")
    d.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    d.add_argument("--idle-timeout", type=int, default=120, help="capture/live: flow idle timeout, s")
    d.add_argument("--active-timeout", type=int, default=1800, help="capture/live: flow active timeout, s")
    d.add_argument("--max-packets", type=int, help="live: stop after N packets")
    d.add_argument("--max-seconds", type=float, help="live: stop after N seconds")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_detect)

    i = sub.add_parser("info", help="what a saved model is and how it scored")
    i.add_argument("--model-dir", default=DEFAULT_MODEL_DIR)
    i.add_argument("--json", action="store_true", help="print the whole manifest")
    i.set_defaults(func=cmd_info)

    b = sub.add_parser("benchmark", help="train and compare every baseline on the same paper and dedup splits")
    from .benchmarking import add_benchmark_arguments

    add_benchmark_arguments(b)
    b.set_defaults(func=cmd_benchmark)

    from .tuning import add_tune_arguments

    tu = sub.add_parser("tune", help="search the CNN-BiLSTM's hyperparameters with Optuna and write the best config")
    add_tune_arguments(tu)
    tu.set_defaults(func=cmd_tune)

    m = sub.add_parser("meter", help="turn a capture or interface into NF flows")
    try:
        from .metering.cli import add_meter_arguments

        add_meter_arguments(m)
    except ImportError as exc:  # pragma: no cover - nfstream missing
        m.add_argument("rest", nargs="*")
        m.set_defaults(meter_unavailable=str(exc))
    m.set_defaults(func=cmd_meter)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("flowsentinel: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"flowsentinel: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
