"""A smoke run of the benchmark: every column of the table, every file written."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from flowsentinel.cli import main
from flowsentinel.cli.benchmark import add_arguments as add_benchmark_arguments
from flowsentinel.training.benchmark import markdown_table, run_benchmark

ROW_KEYS = (
    "accuracy", "f1_macro", "f1_weighted", "recall", "false_alarm_rate", "roc_auc", "train_s", "flows_per_s",
    "latency_p50_ms", "latency_p99_ms", "size_bytes", "size_from",
)
HEADERS = (
    "accuracy", "F1 macro", "F1 weighted", "recall Benign", "false-alarm rate", "ROC-AUC", "train s",
    "flows/s @4096", "latency p50 ms", "latency p99 ms", "size",
)
SMALL = {"extratrees": {"n_estimators": 10}, "lightgbm": {"n_estimators": 10}, "dnn": {"hidden_layers": (16,)}}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_smoke_run_on_synthetic_flows(synthetic, tmp_path):
    result = run_benchmark(["extratrees", "dnn", "pca"], data=synthetic, protocols=("paper", "dedup"), epochs=1,
                           out_dir=tmp_path, progress=False, n_jobs=1, latency_calls=10, model_params=SMALL)
    rows = result["rows"]
    assert [(r["protocol"], r["model"]) for r in rows] == [
        (p, m) for p in ("paper", "dedup") for m in ("extratrees", "dnn", "pca")
    ]
    classes = result["classes"]
    assert classes[0] == "Benign" and len(classes) == 5
    for r in rows:
        for key in ROW_KEYS:
            assert key in r, key
        assert set(r["recall"]) == set(classes)
        assert r["flows_per_s"] > 0 and r["latency_p99_ms"] >= r["latency_p50_ms"] > 0
        assert r["size_bytes"] > 0 and r["size_from"] in ("saved", "memory")
        assert r["scored_as"] == ("binary" if r["model"] == "pca" else "multiclass")
    assert result["splits"]["dedup"]["n_test"] <= result["splits"]["paper"]["n_test"]

    md = (tmp_path / "benchmark.md").read_text()
    assert "SYNTHETIC" in md
    header = md.split("| protocol |", 1)[1].splitlines()[0]
    for h in HEADERS:
        assert h in header, h
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert len(data["rows"]) == 6 and data["settings"]["epochs"] == 1
    assert (tmp_path / "benchmark.png").stat().st_size > 1000
    assert markdown_table(result).count("\n") == 2 + len(rows)


def test_cli_on_the_real_sample(sample_slice, tmp_path, capsys):
    pytest.importorskip("lightgbm", reason="LightGBM is the optional 'baselines' extra")
    argv = ["--models", "lightgbm,isolationforest", "--data", str(sample_slice), "--protocols", "paper",
            "--max-rows", "4000", "--n-jobs", "1", "--latency-calls", "5", "--out-dir", str(tmp_path), "--no-progress"]
    add_benchmark_arguments(argparse.ArgumentParser()).parse_args(argv)  # the library's parser takes the same line
    assert main(["-q", "benchmark", *argv]) == 0
    out = capsys.readouterr().out
    assert "| paper | lightgbm |" in out and "| paper | isolationforest |" in out
    assert "SYNTHETIC" not in out
    assert (tmp_path / "benchmark.md").exists()


def test_unknown_model_is_refused(synthetic, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        run_benchmark(["extratrees", "nope"], data=synthetic, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="protocols"):
        run_benchmark(["pca"], data=synthetic, protocols=("random",), out_dir=tmp_path, progress=False)
