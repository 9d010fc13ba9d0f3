"""Evaluation reports: ``metrics.json``, ``report.md`` and PNG plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .tables import Column, fmt_value, metric_comparison, render

__all__ = ["jsonable", "write_report", "markdown_report", "model_tables", "plot_confusion", "plot_curves",
           "plot_history"]

log = logging.getLogger(__name__)


def model_tables(result: dict[str, Any], style: str = "markdown") -> tuple[str, str]:
    """The summary table (the model beside its references and the majority baseline) and the per-class one."""
    metrics = result["metrics"]
    refs: dict[str, dict] = result.get("references", {})
    name = result.get("model_name", "model")
    summary = metric_comparison({name: metrics, **refs}, baseline=metrics, style=style)
    columns = [Column("class", "class"), Column("precision", "precision", "{:.4f}"), Column("recall", "recall", "{:.4f}"),
               Column("f1", "F1", "{:.4f}"), Column("support", "support", "{:,}")]
    columns += [Column(f"ref:{n}", f"{n} F1", "{:.4f}") for n in refs]
    rows = [{"class": cls, **s, **{f"ref:{n}": r.get("per_class", {}).get(cls, {}).get("f1") for n, r in refs.items()}}
            for cls, s in metrics["per_class"].items()]
    return summary, render(rows, columns, style)


def markdown_report(result: dict[str, Any]) -> str:
    """A readable report: the model beside its references, per class, confusion."""
    metrics = result["metrics"]
    lines = [f"# flowsentinel evaluation: {result.get('title', 'model')}", ""]
    if result.get("synthetic"):
        lines += ["**SYNTHETIC DATA**: these flows were generated, not recorded; the scores say nothing about real traffic.", ""]
    for key, label in (("data", "Data"), ("protocol", "Protocol"), ("task", "Task"), ("model", "Model")):
        if result.get(key):
            lines.append(f"- {label}: {result[key]}")
    split = result.get("split_info") or {}
    if split:
        lines.append("- Split: " + ", ".join(f"{k} = {fmt_value(v, '{:.4f}' if isinstance(v, float) else None)}"
                                             for k, v in split.items()))
    lines.append(f"- Test flows: {metrics['n_flows']:,} ({metrics.get('n_benign', 0):,} benign, {metrics.get('n_attack', 0):,} attack)")
    if result.get("sources"):
        lines += ["", "## Flows per source and class", "", result["sources"]]
    summary, per_class = model_tables(result)
    lines += ["", summary, "", "## Per class", "", per_class]
    cm = metrics["confusion_matrix"]
    cm_cols = [Column("truth", "")] + [Column(c, c, "{:,}") for c in cm["labels"]]
    cm_rows = [{"truth": f"**{label}**", **dict(zip(cm["labels"], row))} for label, row in zip(cm["labels"], cm["matrix"])]
    lines += ["", "## Confusion matrix (rows: truth, columns: prediction)", "", render(cm_rows, cm_cols)]
    if result.get("history"):
        h_cols = [Column("epoch", "epoch", "{}"), Column("train_loss", "train loss", "{:.4f}"),
                  Column("val_loss", "val loss", "{:.4f}"), Column("val_accuracy", "val accuracy", "{:.4f}"),
                  Column("val_f1_macro", "val macro-F1", "{:.4f}"), Column("flows_per_s", "flows/s", "{:,.0f}")]
        lines += ["", "## Training", "", render(result["history"], h_cols)]
    plots = result.get("plots") or []
    if plots:
        lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots]
    return "\n".join(lines) + "\n"


def plot_confusion(metrics: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(metrics["confusion_matrix"]["matrix"], dtype=float)
    labels = metrics["confusion_matrix"]["labels"]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.0 * len(labels) + 2.5))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{int(cm[i, j]):,}\n{norm[i, j]:.1%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of true class")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path


def plot_curves(curves: dict[str, dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, c in curves.items():
        if c is None:
            continue
        a.plot(c["roc"]["fpr"], c["roc"]["tpr"], label=name)
        b.plot(c["pr"]["recall"], c["pr"]["precision"], label=name)
    a.plot([0, 1], [0, 1], ":", color="grey")
    a.set(xlabel="false-alarm rate (benign flagged)", ylabel="detection rate", title="ROC (attack vs benign)")
    a.set_xscale("symlog", linthresh=1e-3)
    b.set(xlabel="recall", ylabel="precision", title="Precision-recall (attack positive)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path


def plot_history(history: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["val_loss"] for h in history], "o-", label="validation")
    a.set(xlabel="epoch", ylabel="loss", title="Loss")
    b.plot(ep, [h.get("val_accuracy") for h in history], "o-", label="val accuracy")
    b.plot(ep, [h.get("val_f1_macro") for h in history], "o-", label="val macro-F1")
    b.set(xlabel="epoch", title="Validation scores")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)
    return path


def jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays unwrapped, NaN and infinity as null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _save_figure(fig, path: str | Path) -> None:
    """A figure as PNG, written through :func:`flowsentinel.io.outputs.write_bytes` (whole or not at all)."""
    import io

    from ..io.outputs import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_bytes(path, buf.getvalue())


def write_report(out_dir: str | Path, result: dict[str, Any], curves: dict | None = None) -> dict[str, Path]:
    """Write ``metrics.json`` (the metrics at top level), ``report.md`` and plots, each file whole or not at all."""
    from ..io.outputs import check_output_dir, write_text

    out = check_output_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    title = result.get("title", "model")
    if result.get("synthetic"):
        title = "[SYNTHETIC] " + title
    plots = [plot_confusion(result["metrics"], out / "confusion_matrix.png", f"Confusion matrix: {title}")]
    if curves and any(v is not None for v in curves.values()):
        plots.append(plot_curves(curves, out / "roc_pr_curves.png", title))
    if result.get("history"):
        plots.append(plot_history(result["history"], out / "training_curves.png", title))
    result = {**result, "plots": [str(p) for p in plots]}
    payload = {**result["metrics"], **{k: v for k, v in result.items() if k != "metrics"}}
    write_text(out / "metrics.json", json.dumps(jsonable(payload), indent=2))
    write_text(out / "report.md", markdown_report(result))
    log.info("report written to %s", out)
    return {"metrics": out / "metrics.json", "report": out / "report.md", **{p.stem: p for p in plots}}
