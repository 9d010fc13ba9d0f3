"""The command line end to end on a small slice of the real NF-BoT-IoT-v2 sample (generated flows where
the shared data is absent: these tests run everywhere)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from flowsentinel.cli import main
from flowsentinel.evaluation.metrics import REQUIRED_KEYS
from flowsentinel.io.readers import read_flows
from flowsentinel.persistence import load_model


@pytest.fixture(scope="module")
def trained(cli_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    code = main(["-q", "train", "--data", str(cli_slice), "--model-dir", str(out / "model"),
                 "--epochs", "2", "--set", "model.batch_size=256"])
    assert code == 0
    return out


def run_cli(*args):
    """Run the installed entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "flowsentinel.cli", *args], capture_output=True, text=True, timeout=300)


def test_train_writes_model_and_report(trained, real_data):
    model = trained / "model"
    assert (model / "manifest.json").exists() and (model / "weights.safetensors").exists()
    report = model / "report"
    for name in ("metrics.json", "report.md", "confusion_matrix.png", "roc_pr_curves.png", "training_curves.png"):
        assert (report / name).stat().st_size > 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(REQUIRED_KEYS) <= set(metrics)
    assert "extratrees" in metrics["references"]
    assert metrics["protocol"] == "paper" and metrics["synthetic"] is (not real_data)


def test_evaluate_writes_metrics_json(trained, cli_slice):
    code = main(["-q", "evaluate", "--model-dir", str(trained / "model"), "--data", str(cli_slice),
                 "--report-dir", str(trained / "eval")])
    assert code == 0
    metrics = json.loads((trained / "eval" / "metrics.json").read_text())
    assert set(REQUIRED_KEYS) <= set(metrics)
    assert metrics["n_flows"] == 6000
    assert 0.0 <= metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_detect_scores_match_the_saved_model(trained, cli_slice, fmt):
    out = trained / f"alerts.{fmt}"
    code = main(["-q", "detect", str(cli_slice), "--model-dir", str(trained / "model"), "--output", str(out),
                 "--format", fmt, "--no-progress", "--no-suppress"])
    assert code == 0
    flows, _ = read_flows(cli_slice)
    expected = load_model(trained / "model").decision_function(flows)
    if fmt == "jsonl":
        records = [json.loads(line) for line in out.read_text().splitlines()]
        scores = np.array([r["flowsentinel"]["score"] for r in records])
        alerts = [r for r in records if r["event_type"] == "alert"]
        assert all(r["alert"]["score"] >= 0.5 and r["alert"]["category"] != "Benign" for r in alerts)
        first = records[0]
        assert {"timestamp", "flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto"} <= set(first)
        assert [r["flowsentinel"]["row"] for r in records[:3]] == [2, 3, 4]
    else:
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        scores = np.array([float(r["score"]) for r in rows])
        assert set(r["alert"] for r in rows) <= {"0", "1"}
    assert len(scores) == 6000
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_info_describes_the_model(trained, capsys):
    assert main(["info", "--model-dir", str(trained / "model")]) == 0
    text = capsys.readouterr().out
    assert "DeepDetector cnn-bilstm" in text and "accuracy" in text and "Benign" in text
    assert "files and the decision fields match" in text


def test_user_mistakes_exit_2_with_one_line_and_no_traceback(trained, tmp_path, cli_slice, capsys):
    bad_flows = tmp_path / "bad.csv"
    bad_flows.write_text("a,b\n1,2\n")
    cases = [
        ["detect", str(tmp_path / "absent.csv"), "--model-dir", str(trained / "model")],
        ["detect", str(bad_flows), "--model-dir", str(trained / "model")],
        ["detect", str(cli_slice), "--model-dir", str(tmp_path / "no-model")],
        ["train", "--data", str(cli_slice), "--set", "model.nonsense=1", "--model-dir", str(tmp_path / "m")],
        ["train", "--data", str(cli_slice), "--set", "broken", "--model-dir", str(tmp_path / "m")],
        ["train", "--data", str(cli_slice), "--set", "model.target_far=None", "--model-dir", str(tmp_path / "m")],
        ["train", "--data", str(cli_slice), "--set", "model.monitor='recall'", "--model-dir", str(tmp_path / "m")],
        ["evaluate", "--model-dir", str(trained / "model"), "--data", str(bad_flows)],
    ]
    for args in cases:
        code = main(["-q", *args])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and errors[0].startswith("flowsentinel: error:"), err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--task", "nope"])  # argparse usage error
    assert exc.value.code == 2
    # As a user runs it: a separate process, no traceback on stderr.
    proc = run_cli("detect", str(bad_flows), "--model-dir", str(trained / "model"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("flowsentinel: error:")


def test_detect_on_flows_missing_a_model_column_names_it(trained, cli_slice, tmp_path, capsys):
    path = tmp_path / "partial.csv"
    read_flows(cli_slice)[0].drop(columns=["TCP_WIN_MAX_IN"]).iloc[:10].to_csv(path, index=False)
    assert main(["-q", "detect", str(path), "--model-dir", str(trained / "model")]) == 2
    assert "TCP_WIN_MAX_IN" in capsys.readouterr().err


def test_detect_from_a_capture_writes_eve_alerts_and_a_summary(trained, portscan, tmp_path, capsys):
    out, summary = tmp_path / "eve.jsonl", tmp_path / "summary.json"
    code = main(["-q", "detect", str(portscan), "--model-dir", str(trained / "model"), "--output", str(out),
                 "--summary", str(summary), "--no-progress", "--no-suppress"])
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    stats = json.loads(summary.read_text())
    assert stats["n_flows"] == len(records) == 29  # a port scan: one small flow per probed port
    assert stats["n_alerts"] == sum(r["event_type"] == "alert" for r in records)
    first = records[0]
    # Timestamps come from the capture, not the clock: this capture is from the 2000s.
    assert first["timestamp"][:2] == "20" and not first["timestamp"].startswith("2026")
    assert {"flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto"} <= set(first)
    assert first["flowsentinel"]["model_version"]
    err = capsys.readouterr().err
    assert "metering:" in err and "detect:" in err


def test_detect_on_a_file_that_is_not_a_capture_nor_flows(trained, tmp_path, capsys):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all" * 10)
    assert main(["-q", "detect", str(junk), "--model-dir", str(trained / "model")]) == 2
    assert "junk.pcap" in capsys.readouterr().err
