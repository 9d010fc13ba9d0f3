"""Train, evaluate on the protocol's held-out split, report, save: one run (``flowsentinel train``).

The steps are the shared experiment path (:mod:`flowsentinel.training.experiment`);
the references (Extra Trees by default) are trained on the same split at the
same threshold policy as the model, so that the table compares like with like.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import ExperimentConfig, build_detector, build_reference
from ..evaluation.report import write_report
from ..persistence import save_model
from .experiment import fit_and_evaluate, load_dataset, prepare

__all__ = ["train_and_evaluate", "report_and_save", "report_folder"]

log = logging.getLogger(__name__)


def report_folder(model_dir: str | Path | None, report_dir: str | Path | None) -> Path | None:
    """Where a run's report goes: ``report_dir``, else ``MODEL_DIR/report``."""
    return Path(report_dir) if report_dir else (Path(model_dir) / "report" if model_dir else None)


def train_and_evaluate(cfg: ExperimentConfig, model_dir: str | Path | None, report_dir: str | Path | None) -> dict:
    """Train the configured detector, evaluate it and its references, save it."""
    report_dir = report_folder(model_dir, report_dir)
    detector = build_detector(cfg)
    detector.check_params()
    references = [build_reference(name, cfg) for name in cfg.run.references]
    for ref in references:
        ref.check_params()
    data = load_dataset(cfg.run.data, synthetic_flows=cfg.run.synthetic_flows, seed=cfg.run.seed,
                        max_rows=cfg.run.max_rows, rejects_dir=report_dir, base=cfg.run.data_base)
    prepared = prepare(data, task=cfg.run.task, protocol=cfg.run.protocol, seed=cfg.run.seed,
                       fractions=cfg.run.fractions, features=cfg.features,
                       balance=cfg.run.balance)
    main = fit_and_evaluate(detector, prepared)
    curves = {main["name"]: main["curve"]}
    ref_metrics: dict[str, dict] = {}
    for ref in references:
        out = fit_and_evaluate(ref, prepared)
        ref_metrics[out["name"]] = out["metrics"]
        curves[out["name"]] = out["curve"]

    return report_and_save(cfg, detector, main, ref_metrics, curves, data, prepared, model_dir, report_dir)


def report_and_save(cfg: ExperimentConfig, detector, main: dict, ref_metrics: dict, curves: dict, data, prepared,
                    model_dir: str | Path | None, report_dir: str | Path | None) -> dict:
    """The run's result, its model saved and its report written (what every way of training ends with)."""
    report_dir = report_folder(model_dir, report_dir)
    result = {
        "title": f"{main['name']}, {cfg.run.task}, {prepared.protocol} protocol",
        "model_name": main["name"],
        "data": data.description,
        "synthetic": data.synthetic,
        "protocol": prepared.protocol,
        "task": cfg.run.task,
        "model": f"{type(detector).__name__} {main['name']} ({getattr(detector, 'mode', 'flow')} mode)",
        "split_info": prepared.split_info,
        "sources": data.counts_table(),
        "metrics": main["metrics"],
        "references": ref_metrics,
        "history": getattr(detector, "history_", []),
        "config": cfg.to_dict(),
    }
    # The model first: saving replaces its directory whole, and the report goes inside it by default.
    if model_dir:
        save_model(
            detector,
            model_dir,
            metrics={"protocol": prepared.protocol, "test": main["metrics"], "references": ref_metrics,
                     "split": prepared.split_info},
            training_data={**data.info, "protocol": prepared.protocol, "majority_class": prepared.majority},
            extra={"config": cfg.to_dict(), "synthetic": data.synthetic},
        )
        result["model_dir"] = str(model_dir)
    if report_dir:
        result["files"] = {k: str(v) for k, v in write_report(report_dir, result, curves).items()}
    return result
