"""Splits and metrics: evaluation that cannot fool itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flowsentinel.evaluation.metrics import REQUIRED_KEYS, compute_metrics
from flowsentinel.evaluation.report import write_report
from flowsentinel.evaluation.splits import dedup_index, make_split, stratified_split
from flowsentinel.features import input_columns
from flowsentinel.schema import get_schema


def test_paper_split_is_stratified_70_15_15(synthetic):
    y = synthetic["Attack"].to_numpy()
    s = make_split(synthetic, y, "paper", input_columns(get_schema("v2")), seed=0)
    assert len(s.train) + len(s.val) + len(s.test) == len(y)
    assert not set(s.train) & set(s.test)
    for cls in np.unique(y):
        share = (y[s.train] == cls).sum() / (y == cls).sum()
        assert abs(share - 0.7) < 0.1


def test_dedup_split_puts_no_test_vector_in_training(sample_frame):
    cols = input_columns(get_schema("v2"))
    y = sample_frame["Attack"].to_numpy()
    s = make_split(sample_frame, y, "dedup", cols, seed=0)
    key = pd.util.hash_pandas_object(sample_frame[cols], index=False).to_numpy()
    assert not set(key[s.train]) & set(key[s.test])
    assert not set(key[s.val]) & set(key[s.test])
    assert s.info["duplicate_fraction"] > 0.5  # the testbed floods repeat themselves
    paper = make_split(sample_frame, y, "paper", cols, seed=0)
    assert set(key[paper.train]) & set(key[paper.test])  # the leak the dedup protocol removes


def test_dedup_reports_conflicting_labels():
    frame = pd.DataFrame({"a": [1, 1, 2, 2], "b": [0, 0, 0, 0]})
    keep, info = dedup_index(frame, np.array(["x", "y", "x", "x"]))
    assert keep.tolist() == [0, 2]
    assert info["vectors_with_conflicting_labels"] == 1


def test_rare_class_kept_in_training_with_a_warning(caplog):
    y = np.array(["a"] * 20 + ["rare"] * 2)
    s = stratified_split(y, seed=1)
    assert set(np.flatnonzero(y == "rare")) <= set(s.train)
    assert "rare" in caplog.text


def test_metrics_have_every_key_and_right_values():
    y = np.array(["Benign"] * 10 + ["DoS"] * 80 + ["Theft"] * 10)
    pred = y.copy()
    pred[:2] = "DoS"  # two false alarms
    pred[90:95] = "DoS"  # half of Theft called DoS: still detected
    scores = np.where(pred == "Benign", 0.1, 0.9)
    m = compute_metrics(y, pred, scores)
    assert set(REQUIRED_KEYS) <= set(m)
    assert m["false_alarm_rate"] == pytest.approx(0.2)
    assert m["detection_rate"] == 1.0
    assert m["per_class"]["Theft"]["recall"] == pytest.approx(0.5)
    assert m["majority_baseline_accuracy"] == pytest.approx(0.8)
    assert m["f1_macro"] < m["f1_weighted"]  # the rare class drags macro down
    assert m["confusion_matrix"]["labels"][0] == "Benign"
    assert sum(map(sum, m["confusion_matrix"]["matrix"])) == 100


def test_report_files_written(tmp_path):
    y = np.array(["Benign"] * 5 + ["DoS"] * 5)
    m = compute_metrics(y, y, np.r_[np.zeros(5), np.ones(5)])
    files = write_report(tmp_path, {"title": "t", "metrics": m, "references": {"extratrees": m},
                                    "history": [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5,
                                                 "val_f1_macro": 0.5, "flows_per_s": 10.0}]},
                         {"model": {"roc": {"fpr": [0, 1], "tpr": [0, 1]}, "pr": {"recall": [0, 1], "precision": [1, 0.5]}}})
    for key in ("metrics", "report", "confusion_matrix", "roc_pr_curves", "training_curves"):
        assert files[key].exists() and files[key].stat().st_size > 0
    text = files["report"].read_text()
    assert "majority baseline" in text and "extratrees" in text
