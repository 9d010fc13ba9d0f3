"""The one renderer of result tables: Markdown for reports, aligned text for the terminal.

A table is a list of columns (key, heading, format) and a list of rows
(dicts). Every result table of flowsentinel (train and evaluate output,
``report.md``, the benchmark, the cross-dataset table) goes through
:func:`render`, naming each model by its own name.

>>> cols = [Column("model", "model"), Column("accuracy", "accuracy", "{:.4f}")]
>>> print(render([{"model": "cnn-bilstm", "accuracy": 0.99}, {"model": "extratrees", "accuracy": None}], cols))
| model | accuracy |
|---|---:|
| cnn-bilstm | 0.9900 |
| extratrees | n/a |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

__all__ = ["Column", "render", "METRIC_ROWS", "metric_comparison", "fmt_value"]


@dataclass(frozen=True)
class Column:
    """One column: the row key it shows, its heading, a format for numbers."""

    key: str
    heading: str
    format: str | None = None

    @property
    def numeric(self) -> bool:
        return self.format is not None


def fmt_value(value: Any, format: str | None = None) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if format is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format.format(value)
    return str(value)


def render(rows: Iterable[dict[str, Any]], columns: Sequence[Column], style: str = "markdown") -> str:
    """The table as Markdown (``style="markdown"``) or space-aligned text (``"text"``)."""
    cells = [[fmt_value(r.get(c.key), c.format) for c in columns] for r in rows]
    if style == "markdown":
        lines = ["| " + " | ".join(c.heading for c in columns) + " |",
                 "|" + "|".join("---:" if c.numeric else "---" for c in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    if style != "text":
        raise ValueError(f"style must be 'markdown' or 'text', got {style!r}")
    widths = [max([len(c.heading)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    def line(values):
        return "  ".join(v.rjust(w) if c.numeric else v.ljust(w) for v, w, c in zip(values, widths, columns)).rstrip()
    return "\n".join([line([c.heading for c in columns])] + [line(row) for row in cells])


#: The summary metrics every evaluation shows, in order: (key, label).
METRIC_ROWS = (
    ("accuracy", "accuracy"),
    ("precision_macro", "precision (macro)"),
    ("recall_macro", "recall (macro)"),
    ("f1_macro", "F1 (macro)"),
    ("precision_weighted", "precision (weighted)"),
    ("recall_weighted", "recall (weighted)"),
    ("f1_weighted", "F1 (weighted)"),
    ("binary_f1", "binary F1 (attack vs benign)"),
    ("detection_rate", "detection rate (attacks flagged)"),
    ("false_alarm_rate", "false-alarm rate (benign flagged)"),
    ("roc_auc", "ROC-AUC (attack vs benign)"),
    ("pr_auc", "PR-AUC (attack vs benign)"),
)


def metric_comparison(models: dict[str, dict[str, Any]], baseline: dict[str, Any] | None = None,
                      style: str = "markdown") -> str:
    """Metrics as rows, one column per model (named), and the majority baseline where it applies."""
    names = list(models)
    columns = [Column("metric", "metric")] + [Column(n, n, "{:.4f}") for n in names]
    if baseline is not None:
        columns.append(Column("__majority", "majority baseline", "{:.4f}"))
    rows = []
    for key, label in METRIC_ROWS:
        row: dict[str, Any] = {"metric": label, **{n: models[n].get(key) for n in names}}
        if baseline is not None:
            row["__majority"] = {"accuracy": baseline.get("majority_baseline_accuracy"),
                                 "f1_macro": baseline.get("majority_baseline_f1_macro")}.get(key)
        rows.append(row)
    return render(rows, columns, style)
