"""The command line on the probe's entry-point cases that were still open (probe of 2026-12-01, D5, D7, D15).

Hangs are run in a subprocess with a timeout, so that a regression fails
the test instead of stopping the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flowsentinel.cli import main


def _cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "flowsentinel.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_detect_on_a_fifo_named_csv_is_refused_at_once(small_model, tmp_path):
    """D5, case 79: a FIFO with no writer hung (since the collector: in the nfdump sniff, before the reader)."""
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    proc = _cli("detect", str(fifo), "--model-dir", str(small_model), "-o", str(tmp_path / "z.jsonl"))
    assert proc.returncode == 2 and "FIFO" in _one_line(proc.stderr)


def test_detect_on_a_link_to_dev_zero_is_refused_at_once(small_model, tmp_path):
    """D5, cases 74, 75, 78: ``zero.csv -> /dev/zero`` read without end (4 GB in 19 s)."""
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    for argv in (["detect", str(link), "--model-dir", str(small_model), "-o", str(tmp_path / "z.jsonl")],
                 ["evaluate", "--model-dir", str(small_model), "--data", str(link), "--report-dir", str(tmp_path)]):
        proc = _cli(*argv)
        assert proc.returncode == 2 and "character device" in _one_line(proc.stderr)


def test_a_folder_named_pcap_is_one_line(small_model, tmp_path, capsys):
    """D15: a directory named ``x.pcap`` given to detect."""
    (tmp_path / "x.pcap").mkdir()
    assert main(["detect", str(tmp_path / "x.pcap"), "--model-dir", str(small_model)]) == 2
    assert "is a directory" in _one_line(capsys.readouterr().err)


def test_meter_on_a_missing_interface_prints_its_error_alone(tmp_path, capsys):
    """Observation: ``meter --interface nope0`` printed its error behind a progress-bar fragment."""
    pytest.importorskip("nfstream")
    assert main(["meter", "--interface", "nope0", "-o", str(tmp_path / "n.csv")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: nope0: no such network interface; list them with `ip link`"]


def test_reports_under_a_file_are_refused_before_any_work(small_model, small_flows, tmp_path, capsys):
    """D7: ``evaluate --report-dir /dev/full/x``, ``train --report-dir /dev/full/rep`` (NotADirectoryError)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x\n")
    code = main(["evaluate", "--model-dir", str(small_model), "--data", str(small_flows), "--report-dir",
                 str(blocker / "x")])
    assert code == 2 and "a_file is not a folder" in _one_line(capsys.readouterr().err)
    code = main(["train", "--data", str(small_flows), "--model-dir", str(tmp_path / "m"), "--report-dir",
                 str(blocker / "rep"), "--epochs", "1", "--no-reference"])
    assert code == 2 and "a_file is not a folder" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "m").exists()


def test_detect_output_under_a_file_names_the_file(small_model, small_flows, tmp_path, capsys):
    """D7: ``-o out/a_file/x.jsonl`` gave FileExistsError (later: "already exists", which misleads)."""
    (tmp_path / "a_file").write_text("x\n")
    code = main(["detect", str(small_flows), "--model-dir", str(small_model), "-o",
                 str(tmp_path / "a_file" / "x.jsonl")])
    assert code == 2 and "a_file is not a folder" in _one_line(capsys.readouterr().err)


def _variant(small_flows, tmp_path, name, change):
    import pandas as pd

    frame = change(pd.read_csv(small_flows))
    out = tmp_path / name
    frame.to_csv(out, index=False)
    return out


def test_training_data_that_cannot_train_is_one_line(small_flows, tmp_path, capsys):
    """D7/D14: a 1-row file (RuntimeError from torch), one attack class only (a one-class model saved, exit 0)."""
    one_row = _variant(small_flows, tmp_path, "one_row.csv", lambda f: f.iloc[:1])
    one_class = _variant(small_flows, tmp_path, "one_class.csv",
                         lambda f: f.assign(Attack="DoS", Label=1))
    for data, says in ((one_class, "one class only"), (one_row, "too few flows")):
        code = main(["train", "--data", str(data), "--model-dir", str(tmp_path / "m"), "--epochs", "1",
                     "--no-reference"])
        line = _one_line(capsys.readouterr().err)
        assert code == 2 and says in line
        assert not (tmp_path / "m").exists()
    assert data.name in line  # the last one, too few flows: which data was too small


def test_evaluate_on_attack_names_the_model_does_not_know_is_one_line(small_model, small_flows, tmp_path, capsys):
    """D14, case 112: an ``Attack`` column of 0/1 gave accuracy 0.0 without a word."""
    numeric = _variant(small_flows, tmp_path, "attack01.csv", lambda f: f.assign(Attack=f["Label"]))
    code = main(["evaluate", "--model-dir", str(small_model), "--data", str(numeric), "--report-dir",
                 str(tmp_path / "ev")])
    assert code == 2 and "not in the class taxonomy" in _one_line(capsys.readouterr().err)


def test_tune_with_a_storage_that_is_no_url_is_one_line(small_flows, tmp_path, capsys):
    """D7: ``tune --storage not-a-url`` gave an sqlalchemy ArgumentError traceback."""
    pytest.importorskip("optuna")
    code = main(["tune", "--data", str(small_flows), "--max-rows", "300", "--trials", "1", "--epochs", "1",
                 "--storage", "not-a-url"])
    assert code == 2 and "not-a-url" in _one_line(capsys.readouterr().err)


def _cut_gzip(small_flows, tmp_path, n_copies=20):
    """The generated flows repeated and gzipped, then cut at half its bytes (the probe's ``sample_half.csv.gz``)."""
    import gzip

    lines = small_flows.read_bytes().splitlines(keepends=True)
    packed = gzip.compress(lines[0] + b"".join(lines[1:]) * n_copies)
    cut = tmp_path / "flows_half.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    return cut


def test_detect_on_a_cut_file_writes_the_verdicts_of_every_row_before_the_cut(small_model, small_flows, tmp_path):
    """D2, case 83: the verdicts of the rows read before the cut were dropped with the scoring pipeline
    (0 of 111,629 written), although the error said they had come through."""
    import io
    import re

    from flowsentinel.errors import FlowReadError
    from flowsentinel.persistence import load_model
    from flowsentinel.serving.detect import DetectSummary, StreamConfig, detect_file

    cut = _cut_gzip(small_flows, tmp_path)
    out, summary = io.StringIO(), DetectSummary()
    # Small chunks, so that several wait in the pipeline's queues when the reader stops.
    with pytest.raises(FlowReadError, match="cut short") as info:
        detect_file(load_model(small_model), cut, out, chunk_rows=100, progress=False, summary=summary,
                    stream=StreamConfig(chunk_rows=100, queue_depth=4))
    accepted = int(re.search(r"\(([0-9,]+) accepted", str(info.value)).group(1).replace(",", ""))
    assert accepted > 1000
    assert summary.n_flows == accepted == len(out.getvalue().splitlines())


def test_detect_on_a_cut_file_keeps_its_verdicts_in_partial(small_model, small_flows, tmp_path, capsys):
    """D2, case 83, through the command line: exit 2, one line naming the file, the verdicts in ``NAME.partial``."""
    cut = _cut_gzip(small_flows, tmp_path)
    target = tmp_path / "h.jsonl"
    code = main(["detect", str(cut), "--model-dir", str(small_model), "-o", str(target), "--summary",
                 str(tmp_path / "h.json"), "--no-progress"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "flows_half.csv.gz" in line and "cut short" in line
    accepted = int(line.split(" accepted")[0].rsplit("(", 1)[1].replace(",", ""))
    partial = tmp_path / "h.jsonl.partial"
    assert not target.exists() and not (tmp_path / "h.json").exists()
    assert len(partial.read_text().splitlines()) == accepted


def test_flows_without_address_columns_are_scored_evaluated_and_trained(small_model, small_flows, tmp_path, capsys):
    """D6, cases 63, 115, 302: NF-CSE-CIC-IDS2018-v2 has no IPV4_SRC_ADDR/IPV4_DST_ADDR and was refused
    everywhere ("missing 2 column(s)"), though no model uses them."""
    import json

    import pandas as pd

    flows = pd.read_csv(small_flows).drop(columns=["IPV4_SRC_ADDR", "IPV4_DST_ADDR"])
    path = tmp_path / "no_addresses.csv"
    flows.to_csv(path, index=False)
    summary = tmp_path / "s.json"
    assert main(["detect", str(path), "--model-dir", str(small_model), "-o", str(tmp_path / "v.jsonl"),
                 "--summary", str(summary), "--no-progress"]) == 0
    done = json.loads(summary.read_text())
    assert done["n_flows"] == len(flows) and done["n_rejected"] == 0
    records = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert sum("aggregate" not in r["flowsentinel"] for r in records) == len(flows)  # one verdict per flow
    assert main(["evaluate", "--model-dir", str(small_model), "--data", str(path), "--report-dir",
                 str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert main(["train", "--data", str(path), "--model-dir", str(tmp_path / "m"), "--epochs", "1",
                 "--no-reference", "--set", "model.num_threads=1"]) == 0
    assert "IPV4_SRC_ADDR" not in json.loads((tmp_path / "m" / "manifest.json").read_text())["input_columns"]
    assert "Traceback" not in capsys.readouterr().err


def test_evaluate_and_train_refuse_a_cut_file(small_model, small_flows, tmp_path, capsys):
    """D2, cases 104 and 304: the half sample was evaluated, and trained on, as if it were whole (exit 0)."""
    cut = _cut_gzip(small_flows, tmp_path)
    for argv in (["evaluate", "--model-dir", str(small_model), "--data", str(cut), "--report-dir", str(tmp_path / "ev")],
                 ["train", "--data", str(cut), "--model-dir", str(tmp_path / "m"), "--epochs", "1", "--no-reference"]):
        assert main(argv) == 2
        line = _one_line(capsys.readouterr().err)
        assert "flows_half.csv.gz" in line and "cut short" in line
    # No model and no metrics; the cut-short row is kept aside in the rejects file, as every bad row is.
    assert not (tmp_path / "m" / "manifest.json").exists() and not (tmp_path / "ev" / "metrics.json").exists()
