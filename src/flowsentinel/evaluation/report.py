"""Evaluation reports: ``metrics.json``, ``report.md`` and PNG plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["jsonable", "write_report", "markdown_report", "plot_confusion", "plot_curves", "plot_history"]

log = logging.getLogger(__name__)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


SUMMARY_ROWS = (
    ("accuracy", "Accuracy"),
    ("precision_macro", "Precision (macro)"),
    ("recall_macro", "Recall (macro)"),
    ("f1_macro", "F1 (macro)"),
    ("precision_weighted", "Precision (weighted)"),
    ("recall_weighted", "Recall (weighted)"),
    ("f1_weighted", "F1 (weighted)"),
    ("binary_f1", "Binary F1 (attack vs benign)"),
    ("detection_rate", "Detection rate (attacks flagged)"),
    ("false_alarm_rate", "False-alarm rate (benign flagged)"),
    ("roc_auc", "ROC-AUC (attack vs benign)"),
    ("pr_auc", "PR-AUC (attack vs benign)"),
)


def markdown_report(result: dict[str, Any]) -> str:
    """A readable report: the model beside its references, per class, confusion."""
    metrics = result["metrics"]
    refs: dict[str, dict] = result.get("references", {})
    lines = [f"# flowsentinel evaluation: {result.get('title', 'model')}", ""]
    if result.get("synthetic"):
        lines += ["**SYNTHETIC DATA**: these flows were generated, not recorded; the scores say nothing about real traffic.", ""]
    for key, label in (("data", "Data"), ("protocol", "Protocol"), ("task", "Task"), ("model", "Model")):
        if result.get(key):
            lines.append(f"- {label}: {result[key]}")
    split = result.get("split_info") or {}
    if split:
        lines.append("- Split: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in split.items()))
    lines.append(f"- Test flows: {metrics['n_flows']:,} ({metrics.get('n_benign', 0):,} benign, {metrics.get('n_attack', 0):,} attack)")
    lines.append("")
    names = ["model"] + list(refs) + ["majority baseline"]
    lines.append("| metric | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for key, label in SUMMARY_ROWS:
        row = [_fmt(metrics.get(key))] + [_fmt(r.get(key)) for r in refs.values()]
        base = metrics.get("majority_baseline_accuracy") if key == "accuracy" else (
            metrics.get("majority_baseline_f1_macro") if key == "f1_macro" else None
        )
        row.append(_fmt(base) if base is not None else "")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines += ["", "## Per class", "", "| class | precision | recall | F1 | support |" + "".join(f" {n} F1 |" for n in refs), "|---|---|---|---|---|" + "---|" * len(refs)]
    for cls, s in metrics["per_class"].items():
        extra = "".join(f" {_fmt(r.get('per_class', {}).get(cls, {}).get('f1'))} |" for r in refs.values())
        lines.append(f"| {cls} | {_fmt(s['precision'])} | {_fmt(s['recall'])} | {_fmt(s['f1'])} | {s['support']:,} |{extra}")
    cm = metrics["confusion_matrix"]
    lines += ["", "## Confusion matrix (rows: truth, columns: prediction)", "", "| | " + " | ".join(cm["labels"]) + " |", "|---" * (len(cm["labels"]) + 1) + "|"]
    for label, row in zip(cm["labels"], cm["matrix"]):
        lines.append(f"| **{label}** | " + " | ".join(f"{v:,}" for v in row) + " |")
    if result.get("history"):
        lines += ["", "## Training", "", "| epoch | train loss | val loss | val accuracy | val macro-F1 | flows/s |", "|---|---|---|---|---|---|"]
        for h in result["history"]:
            lines.append(
                f"| {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | {h.get('val_accuracy', float('nan')):.4f} | "
                f"{h.get('val_f1_macro', float('nan')):.4f} | {h['flows_per_s']:,.0f} |"
            )
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
    fig.savefig(path, dpi=110)
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
    fig.savefig(path, dpi=110)
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
    fig.savefig(path, dpi=110)
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


def write_report(out_dir: str | Path, result: dict[str, Any], curves: dict | None = None) -> dict[str, Path]:
    """Write ``metrics.json`` (the metrics at top level), ``report.md`` and plots."""
    out = Path(out_dir)
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
    (out / "metrics.json").write_text(json.dumps(jsonable(payload), indent=2))
    (out / "report.md").write_text(markdown_report(result))
    log.info("report written to %s", out)
    return {"metrics": out / "metrics.json", "report": out / "report.md", **{p.stem: p for p in plots}}
