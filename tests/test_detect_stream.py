"""Scoring as a stream: what ``detect`` imports, the pipeline's order, counts and errors, windows across chunks."""

from __future__ import annotations

import io
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from flowsentinel.errors import ConfigError
from flowsentinel.io.alerts import AlertWriter
from flowsentinel.models.deep import cnn_bilstm
from flowsentinel.persistence import load_model, save_model
from flowsentinel.serving import detect as detect_module
from flowsentinel.serving.detect import (
    LINE,
    DetectSummary,
    StreamConfig,
    WindowContext,
    _Pipeline,
    _Stage,
    detect_file,
    detect_frames,
    scoring_workers,
)

pytest.importorskip("onnxruntime")

HEAVY = ("torch", "sklearn", "matplotlib")


@pytest.fixture(scope="module")
def flows(synthetic):
    return synthetic.iloc[:1200].reset_index(drop=True)


@pytest.fixture(scope="module")
def flow_model_dir(flows, tmp_path_factory):
    det = cnn_bilstm(max_epochs=1, conv_channels=(8,), lstm_hidden=8, dense=8, verbose=False, num_threads=1).fit(flows)
    return save_model(det, tmp_path_factory.mktemp("flow-model") / "m")


@pytest.fixture(scope="module")
def window_model_dir(flows, tmp_path_factory):
    det = cnn_bilstm(mode="window", window=4, conv_channels=(8,), lstm_hidden=8, dense=8, max_epochs=1,
                     verbose=False, num_threads=1).fit(flows)
    return save_model(det, tmp_path_factory.mktemp("window-model") / "m")


@pytest.fixture(scope="module")
def flow_model(flow_model_dir):
    return load_model(flow_model_dir, engine="onnx")


@pytest.fixture(scope="module")
def window_model(window_model_dir):
    return load_model(window_model_dir, engine="onnx")


def detect_text(detector, path, **kwargs) -> tuple[str, object]:
    out = io.StringIO()
    summary = detect_file(detector, path, out, "csv", progress=False, **kwargs)
    return out.getvalue(), summary


def no_pipeline_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("detect-") and t.is_alive()]


# ---- start-up ------------------------------------------------------------------------------


def _imports_of_detect(args: list[str]) -> list[str]:
    """Run ``flowsentinel detect`` in a fresh interpreter; the heavy modules it imported."""
    code = (
        "import sys\n"
        "from flowsentinel.cli import main\n"
        f"code = main({args!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_detect_of_a_one_row_csv_through_onnx_imports_no_torch_sklearn_matplotlib(flow_model_dir, flows, tmp_path):
    flows.iloc[:1].to_csv(tmp_path / "one.csv", index=False)
    out = tmp_path / "verdicts.jsonl"
    imported = _imports_of_detect(["-q", "detect", str(tmp_path / "one.csv"), "--model-dir", str(flow_model_dir),
                                   "--engine", "onnx", "--no-progress", "-o", str(out)])
    assert imported == "[]"
    assert len(out.read_text().splitlines()) == 1


def test_detect_of_a_one_flow_capture_through_onnx_imports_no_torch_sklearn_matplotlib(flow_model_dir, pcaps,
                                                                                        tmp_path):
    pytest.importorskip("nfstream")
    capture = pcaps / "ndpi" / "NTPv4.pcap"
    if not capture.exists():
        pytest.skip(f"{capture} not found")
    out = tmp_path / "verdicts.jsonl"
    imported = _imports_of_detect(["-q", "detect", str(capture), "--model-dir", str(flow_model_dir),
                                   "--engine", "onnx", "--no-progress", "-o", str(out)])
    assert imported == "[]"
    assert len(out.read_text().splitlines()) == 1


def test_help_still_lists_every_command(capsys):
    from flowsentinel.cli import COMMANDS, main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(name.replace("_", "-") in text for name in COMMANDS)


# ---- the pipeline ----------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 3])
def test_chunks_on_threads_write_what_one_chunk_in_sequence_writes(flow_model, flows, tmp_path, workers):
    path = tmp_path / "flows.csv"
    flows.to_csv(path, index=False)
    whole, s_whole = detect_text(flow_model, path, stream=StreamConfig(chunk_rows=10_000, concurrent=False))
    chunked, s_chunked = detect_text(flow_model, path, stream=StreamConfig(chunk_rows=7, queue_depth=1,
                                                                           scoring_workers=workers))
    assert chunked == whole
    rows = [int(line.split(",", 1)[0]) for line in chunked.splitlines()[1:]]
    assert rows == list(range(2, len(flows) + 2))
    assert s_chunked.n_flows == s_whole.n_flows == len(flows)
    assert s_chunked.n_alerts == s_whole.n_alerts and s_chunked.by_class == s_whole.by_class
    assert no_pipeline_threads()


def test_counts_stay_read_equals_scored_plus_rejected(flow_model, flows, tmp_path):
    path = tmp_path / "flows.csv"
    text = flows.iloc[:300].to_csv(index=False).splitlines()
    bad = text[10].split(",")
    bad[6] = "not-a-number"  # IN_BYTES
    text[10] = ",".join(bad)
    path.write_text("\n".join(text) + "\n")
    out, summary = detect_text(flow_model, path, stream=StreamConfig(chunk_rows=50), rejects_dir=tmp_path)
    assert summary.n_rejected == 1 and summary.n_flows == 299
    assert summary.n_flows + summary.n_rejected == len(text) - 1
    assert len(out.splitlines()) == 1 + 299


class Boom(Exception):
    pass


def _frames(flows, n_chunks=6, fail_at=None, exc=None):
    size = len(flows) // n_chunks
    for i in range(n_chunks):
        if i == fail_at:
            raise exc
        yield flows.iloc[i * size:(i + 1) * size]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("stage", ["read", "score", "write"])
def test_an_error_in_any_stage_reaches_the_caller_as_raised(flow_model, flows, stage, workers, monkeypatch):
    error = Boom(stage)
    writer = AlertWriter(io.StringIO(), "csv", threshold=flow_model.threshold_)
    detector = flow_model
    if stage == "score":
        calls = []

        def failing(frame, _real=detector.predict_proba):
            calls.append(1)
            if len(calls) == 3:
                raise error
            return _real(frame)

        monkeypatch.setattr(detector, "predict_proba", failing)
    if stage == "write":
        real_write, calls = writer.write, []

        def failing_write(*args):
            calls.append(1)
            if len(calls) == 2:
                raise error
            return real_write(*args)

        monkeypatch.setattr(writer, "write", failing_write)
    frames = _frames(flows, fail_at=4 if stage == "read" else None, exc=error)
    with pytest.raises(Boom) as caught:
        detect_frames(detector, frames, writer, progress=False, stream=StreamConfig(scoring_workers=workers))
    assert caught.value is error
    assert no_pipeline_threads()


def test_the_summary_says_what_was_written_before_an_error(flow_model, flows, monkeypatch):
    writer = AlertWriter(io.StringIO(), "csv", threshold=flow_model.threshold_)
    real_write, calls = writer.write, []

    def failing_write(*args):
        calls.append(1)
        if len(calls) == 3:
            raise Boom("disk")
        return real_write(*args)

    monkeypatch.setattr(writer, "write", failing_write)
    summary = DetectSummary()
    with pytest.raises(Boom):
        detect_frames(flow_model, _frames(flows), writer, progress=False, summary=summary)
    assert summary.n_flows == 2 * (len(flows) // 6)


def test_a_stage_on_several_workers_hands_items_on_in_order():
    # Later items finish first (shorter waits), yet leave the stage, and reach `then`, in input order.
    import time as _time

    seen_then, out = [], []

    def work(i):
        _time.sleep(0.002 * (i % 4 == 0))
        return i * i

    def then(value):
        seen_then.append(value)
        return value

    with _Pipeline([_Stage(work, then, workers=4), out.append], depth=2) as pipe:
        for i in range(40):
            pipe.put(i)
        pipe.finish()
    assert out == seen_then == [i * i for i in range(40)]
    assert len(pipe.threads) == 5 and not any(t.is_alive() for t in pipe.threads)


def test_scoring_workers_follow_the_networks_cost(flow_model, monkeypatch):
    assert scoring_workers(flow_model, StreamConfig(scoring_workers=3)) == 3
    cost = flow_model.engine_.seconds_per_row()
    assert cost is not None and 0 < cost < 1
    monkeypatch.setattr(detect_module, "_cores", lambda: 2)
    monkeypatch.setattr(flow_model.engine_, "seconds_per_row", lambda: detect_module.HEAVY_NETWORK_S / 10)
    assert scoring_workers(flow_model, StreamConfig()) == 1
    monkeypatch.setattr(flow_model.engine_, "seconds_per_row", lambda: detect_module.HEAVY_NETWORK_S * 4)
    assert scoring_workers(flow_model, StreamConfig()) == 2
    monkeypatch.setattr(detect_module, "_cores", lambda: 1)
    assert scoring_workers(flow_model, StreamConfig()) == 1
    with pytest.raises(ConfigError, match="scoring workers"):
        StreamConfig(scoring_workers=0)


def test_detect_workers_option_is_checked(flow_model_dir, flows, tmp_path, capsys):
    from flowsentinel.cli import main

    path = tmp_path / "flows.csv"
    flows.iloc[:50].to_csv(path, index=False)
    out = tmp_path / "v.csv"
    assert main(["detect", str(path), "--model-dir", str(flow_model_dir), "--engine", "onnx", "--workers", "2",
                 "--format", "csv", "--no-progress", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 51
    capsys.readouterr()
    assert main(["detect", str(path), "--model-dir", str(flow_model_dir), "--workers", "0", "-o", str(out)]) == 2
    assert "scoring workers must be at least 1" in capsys.readouterr().err


def test_a_keyboard_interrupt_in_the_calling_thread_stops_the_workers(flow_model, flows):
    writer = AlertWriter(io.StringIO(), "csv", threshold=flow_model.threshold_)
    with pytest.raises(KeyboardInterrupt):
        detect_frames(flow_model, _frames(flows, fail_at=3, exc=KeyboardInterrupt()), writer, progress=False)
    assert no_pipeline_threads()


# ---- windowed models across chunks ----------------------------------------------------------------


def _scores(text: str) -> np.ndarray:
    frame = pd.read_csv(io.StringIO(text))
    return frame["score"].to_numpy()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("timed", [False, True], ids=["table-order", "time-column"])
def test_windowed_scores_do_not_depend_on_chunk_boundaries(window_model, flows, tmp_path, timed, workers):
    table = flows.copy()
    if timed:
        # Non-decreasing times with ties: the file is in time order, as exporters write it.
        table["FLOW_START_MILLISECONDS"] = np.sort(np.random.default_rng(0).integers(0, 300, len(table))) + 1.5e12
    path = tmp_path / "flows.csv"
    table.to_csv(path, index=False)
    whole, _ = detect_text(window_model, path, stream=StreamConfig(chunk_rows=100_000, concurrent=False))
    chunked, summary = detect_text(window_model, path, stream=StreamConfig(chunk_rows=7, scoring_workers=workers))
    assert summary.n_flows == len(table)
    np.testing.assert_array_equal(_scores(chunked), _scores(whole))
    # and both are the scores of the whole table at once
    expected = window_model.decision_function(pd.read_csv(path))
    np.testing.assert_allclose(_scores(whole), expected, atol=1e-6)


def test_window_context_is_bounded(window_model, flows):
    frame = flows.copy()
    frame["IPV4_SRC_ADDR"] = [f"10.0.{i // 250}.{i % 250}" for i in range(len(frame))]  # every flow its own host
    context = WindowContext(window_model, StreamConfig(window_keys=30, window_idle_chunks=1000))
    for start in range(0, len(frame), 100):
        part = frame.iloc[start:start + 100]
        context.source(part, window_model.features_.transform(part))
        assert context.n_keys <= 30
    idle = WindowContext(window_model, StreamConfig(window_idle_chunks=2))
    for start in range(0, 500, 100):
        part = frame.iloc[start:start + 100]
        idle.source(part, window_model.features_.transform(part))
    # Keys of the last two chunks only; each host had one flow, so one row each.
    assert idle.n_keys == 200 and idle.n_rows == 200


def test_carried_rows_are_each_hosts_latest(window_model, flows):
    part = flows.iloc[:40]
    context = WindowContext(window_model)
    context.source(part, window_model.features_.transform(part))
    keep = int(window_model.window) - 1
    expected = part.groupby("IPV4_SRC_ADDR", sort=False).tail(keep)
    assert context.n_rows == len(expected) and context.n_keys == part["IPV4_SRC_ADDR"].nunique()
    assert LINE not in part.columns


def test_the_allocator_setting_applies_once_on_linux():
    """keep_freed_memory (glibc's mallopt) is process-wide and set once; every CLI detect test runs with it."""
    import sys as _sys

    from flowsentinel.serving.allocator import keep_freed_memory

    applied = keep_freed_memory()
    assert applied == _sys.platform.startswith("linux")  # glibc here; a no-op elsewhere
    assert keep_freed_memory() == applied  # once per process
    if applied:
        import pyarrow as pa

        assert pa.default_memory_pool().backend_name == "system"  # Arrow's buffers reuse malloc's kept pages
