"""What several commands share: opening outputs, building a config, printing result tables."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["DEFAULT_MODEL_DIR", "output", "config_from_args", "add_config_arguments", "print_result", "load_detector"]

DEFAULT_MODEL_DIR = "models/cnn-bilstm"


@contextmanager
def output(path: str | None) -> Iterator:
    """Standard output for ``None`` or ``-``, else the file (its folder created)."""
    if path in (None, "-"):
        yield sys.stdout
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            yield fh


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """``--config`` and ``--set``: a TOML config and overrides of its values."""
    p.add_argument("--config", help="TOML config file ([run], [model], [features])")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value (repeatable)")


def config_from_args(args: argparse.Namespace):
    """The experiment config of a command: ``--config``, then the options that stand for its keys."""
    from ..config import load_config, overrides_from_args

    overrides = overrides_from_args(args)
    if getattr(args, "epochs", None) is not None:
        overrides.append(f"model.max_epochs={args.epochs}")
    if getattr(args, "no_reference", False):
        overrides.append("run.references=[]")
    return load_config(getattr(args, "config", None), overrides)


def load_detector(model_dir: str, backend: str | None = None):
    """A saved model, in the chosen backend."""
    if backend == "mindspore":
        from ..backends.mindspore import load_mindspore_model

        return load_mindspore_model(model_dir)
    from ..persistence import load_model

    return load_model(model_dir)


def print_result(result: dict) -> None:
    """A train or evaluate result: the model beside its references and the majority baseline."""
    m = result["metrics"]
    refs = result.get("references", {})
    name = result.get("model_name", "model")
    head = f"{'':34}{name:>14}" + "".join(f"{n:>14}" for n in refs) + f"{'majority':>14}"
    print(("[SYNTHETIC DATA] " if result.get("synthetic") else "") + result.get("title", ""))
    print(f"data: {result.get('data', '')}; test flows: {m['n_flows']:,}")
    print(head)
    rows = [("accuracy", "accuracy"), ("f1_macro", "F1 macro"), ("f1_weighted", "F1 weighted"),
            ("precision_macro", "precision macro"), ("recall_macro", "recall macro"), ("binary_f1", "binary F1"),
            ("detection_rate", "detection rate"), ("false_alarm_rate", "false-alarm rate"), ("roc_auc", "ROC-AUC"),
            ("pr_auc", "PR-AUC")]

    def f(v):
        return f"{v:14.4f}" if isinstance(v, (int, float)) else f"{'n/a':>14}"

    for key, label in rows:
        base = m.get("majority_baseline_accuracy") if key == "accuracy" else (
            m.get("majority_baseline_f1_macro") if key == "f1_macro" else None)
        print(f"{label:34}{f(m.get(key))}" + "".join(f(r.get(key)) for r in refs.values()) + (f(base) if base is not None else ""))
    print(f"per class ({name}):")
    for cls, s in m["per_class"].items():
        extra = "".join(f"  {n} F1 {r.get('per_class', {}).get(cls, {}).get('f1', float('nan')):.4f}" for n, r in refs.items())
        print(f"  {cls:18} P {s['precision']:.4f}  R {s['recall']:.4f}  F1 {s['f1']:.4f}  n={s['support']:,}{extra}")
