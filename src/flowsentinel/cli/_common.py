"""What several commands share: opening outputs, building a config, printing result tables."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Iterator

__all__ = ["DEFAULT_MODEL_DIR", "TRAIN_MODEL_DIR", "add_model_argument", "output", "config_from_args",
           "add_config_arguments", "print_result", "load_detector"]

#: Where ``train`` saves a model unless told otherwise (relative to where it runs, like any output).
TRAIN_MODEL_DIR = "models/cnn-bilstm"
#: The model the commands that score use unless told otherwise: the one shipped inside the package.
DEFAULT_MODEL_DIR = None


def add_model_argument(p: argparse.ArgumentParser, help: str = "the model to use", shipped: str = "default") -> None:
    """``--model-dir``, defaulting to a model shipped with flowsentinel (``shipped`` names which)."""
    which = "" if shipped == "default" else f" for {shipped}s"
    p.add_argument("--model-dir", default=None,
                   help=f"{help} (default: the model shipped with flowsentinel{which}, see docs/model-card.md)")
    p.set_defaults(shipped_model=shipped)


def model_dir_of(args: argparse.Namespace) -> str:
    """``--model-dir``, or the folder of the shipped model the command defaults to."""
    if getattr(args, "model_dir", None):
        return args.model_dir
    from ..paths import shipped_model_dir

    return str(shipped_model_dir(getattr(args, "shipped_model", "default")))


@contextmanager
def output(path: str | None, *, live: bool = False) -> Iterator:
    """Standard output for ``None`` or ``-``, else the file, written safely.

    See :func:`flowsentinel.io.outputs.open_output`: a regular file appears
    under its name only once complete (``live``: written in place as it
    grows, for outputs that readers follow); devices and FIFOs are written
    through; symbolic links and other kinds of file are refused.
    """
    from ..io.outputs import open_output

    with open_output(path, "w", newline="", live=live) as fh:
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


def load_detector(model_dir: str, backend: str | None = None, engine: str | None = None, threads: int | None = 1):
    """A saved model, its digests checked, ready to score with the chosen engine or backend."""
    from ..models.engines import InferenceConfig
    from ..persistence import load_model

    if backend == "mindspore":
        from ..backends.mindspore import mindspore_module

        mindspore_module(threads)
        return load_model(model_dir, backend="mindspore")
    inference = InferenceConfig(engine=engine or "auto", intra_op_threads=threads) if engine else None
    return load_model(model_dir, inference=inference)


def print_result(result: dict) -> None:
    """A train or evaluate result: the model beside its references and the majority baseline, then per class."""
    from ..evaluation.report import model_tables

    m = result["metrics"]
    print(("[SYNTHETIC DATA] " if result.get("synthetic") else "") + result.get("title", ""))
    print(f"data: {result.get('data', '')}; test flows: {m['n_flows']:,}")
    if result.get("sources"):
        print(result["sources"])
    summary, per_class = model_tables(result, style="text")
    print(summary)
    print(per_class)


def add_host_context_arguments(p: argparse.ArgumentParser) -> None:
    """``--no-host-context`` and ``--context-window``: the scan and flood stage beside the model."""
    h = p.add_argument_group("host context: scans, sweeps and floods seen across flows (docs/host-context.md)")
    h.add_argument("--no-host-context", action="store_true",
                   help="score each flow by the model alone (default: add host context where flows carry "
                        "addresses and times)")
    h.add_argument("--context-window", type=float, default=60.0, metavar="S",
                   help="seconds of flow start time over which hosts' probes are counted (default 60)")


def host_context_config(args: argparse.Namespace):
    """The :class:`~flowsentinel.serving.context.HostContextConfig` the arguments ask for."""
    from ..serving.context import HostContextConfig

    return HostContextConfig(enabled=not args.no_host_context, window_s=args.context_window)
