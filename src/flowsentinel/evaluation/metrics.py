"""Scores that cannot flatter a detector on imbalanced flow data.

Besides accuracy, every evaluation reports macro scores (each class counts
the same, so a model that ignores 26 Theft flows shows it), per-class scores,
the binary view a security team lives by (detection rate, false-alarm rate:
benign flows flagged), threshold-free ROC-AUC and PR-AUC, the confusion
matrix, and the majority-class baseline beside them.

>>> y = np.array(["Benign", "DoS", "DoS", "DoS"])
>>> m = compute_metrics(y, np.array(["DoS", "DoS", "DoS", "DoS"]), scores=np.array([.9, .8, .9, .7]))
>>> m["accuracy"], m["false_alarm_rate"], m["detection_rate"], m["majority_baseline_accuracy"]
(0.75, 1.0, 1.0, 0.75)
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from ..schema import BENIGN_CLASS

__all__ = ["compute_metrics", "binary_curves", "REQUIRED_KEYS"]

REQUIRED_KEYS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "detection_rate",
    "false_alarm_rate",
    "per_class",
    "confusion_matrix",
    "majority_baseline_accuracy",
    "n_flows",
)


def _nan_to_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def compute_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    majority_class: str | None = None,
) -> dict:
    """All evaluation scores for one set of predictions.

    Args:
        y_true, y_pred: class names (``Benign`` for benign flows).
        scores: anomaly scores (higher = more anomalous) for ROC-AUC and PR-AUC.
        majority_class: the training split's most frequent class, for the
            majority baseline; the test set's own when not given.
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    if BENIGN_CLASS in labels:
        labels.remove(BENIGN_CLASS)
        labels.insert(0, BENIGN_CLASS)
    out: dict = {"n_flows": int(len(y_true)), "accuracy": float(accuracy_score(y_true, y_pred))}
    true_labels = [c for c in labels if c in set(y_true.tolist())]
    for avg in ("macro", "weighted"):
        # Macro over the classes present in the truth: a class the test set
        # lacks has no recall to average.
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=true_labels, average=avg, zero_division=0
        )
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out["per_class"] = {
        c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, c in enumerate(labels)
    }
    truth_attack = y_true != BENIGN_CLASS
    pred_attack = y_pred != BENIGN_CLASS
    out["detection_rate"] = _nan_to_none(pred_attack[truth_attack].mean()) if truth_attack.any() else None
    out["false_alarm_rate"] = _nan_to_none(pred_attack[~truth_attack].mean()) if (~truth_attack).any() else None
    out["n_benign"] = int((~truth_attack).sum())
    out["n_attack"] = int(truth_attack.sum())
    # Binary view as a classifier: attack is the positive class.
    tp = int((pred_attack & truth_attack).sum())
    fp = int((pred_attack & ~truth_attack).sum())
    fn = int((~pred_attack & truth_attack).sum())
    out["binary_precision"] = tp / (tp + fp) if tp + fp else 0.0
    out["binary_recall"] = tp / (tp + fn) if tp + fn else 0.0
    denom = 2 * tp + fp + fn
    out["binary_f1"] = 2 * tp / denom if denom else 0.0
    out["roc_auc"] = out["pr_auc"] = None
    if scores is not None and truth_attack.any() and (~truth_attack).any():
        out["roc_auc"] = float(roc_auc_score(truth_attack, scores))
        out["pr_auc"] = float(average_precision_score(truth_attack, scores))
    out["confusion_matrix"] = {
        "labels": labels,
        "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if majority_class is None:
        values, counts = np.unique(y_true, return_counts=True)
        majority_class = str(values[np.argmax(counts)])
    base = np.full(len(y_true), majority_class, dtype=object)
    out["majority_class"] = majority_class
    out["majority_baseline_accuracy"] = float(accuracy_score(y_true, base)) if len(y_true) else None
    out["majority_baseline_f1_macro"] = float(
        precision_recall_fscore_support(y_true, base, labels=true_labels, average="macro", zero_division=0)[2]
    )
    return out


def binary_curves(y_true: np.ndarray, scores: np.ndarray, max_points: int = 400) -> dict | None:
    """ROC and PR curve points (attack positive), thinned for plotting."""
    truth = np.asarray(y_true, dtype=object) != BENIGN_CLASS
    if truth.all() or not truth.any():
        return None
    fpr, tpr, _ = roc_curve(truth, scores)
    prec, rec, _ = precision_recall_curve(truth, scores)

    def thin(a, b):
        if len(a) <= max_points:
            return a.tolist(), b.tolist()
        idx = np.unique(np.linspace(0, len(a) - 1, max_points).astype(int))
        return a[idx].tolist(), b[idx].tolist()

    fpr, tpr = thin(fpr, tpr)
    rec, prec = thin(rec, prec)
    return {"roc": {"fpr": fpr, "tpr": tpr}, "pr": {"recall": rec, "precision": prec}}
