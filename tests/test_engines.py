"""Engines inside the detector: ONNX Runtime's parity with PyTorch on real flows, the fallback, threads."""

from __future__ import annotations

import copy
import logging
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from flowsentinel.errors import ConfigError  # noqa: E402
from flowsentinel.models.deep import cnn_bilstm  # noqa: E402
from flowsentinel.models.engines import InferenceConfig, OnnxEngine, TorchEngine  # noqa: E402
from flowsentinel.persistence import load_model, save_model  # noqa: E402

PARITY = 1e-5


def max_abs_diff(a, b, frame) -> float:
    return float(np.abs(np.asarray(a.predict_proba(frame), np.float64) - np.asarray(b.predict_proba(frame), np.float64)).max())


@pytest.fixture(scope="module")
def flow_model(sample_frame):
    # Brief training: parity is about the network's arithmetic, not its accuracy.
    return cnn_bilstm(max_epochs=1, verbose=False, num_threads=1).fit(sample_frame.iloc[:2000])


@pytest.fixture(scope="module")
def window_model(sample_frame):
    return cnn_bilstm(mode="window", window=4, conv_channels=(16,), lstm_hidden=16, dense=16,
                      max_epochs=1, verbose=False, num_threads=1).fit(sample_frame.iloc[:1500])


def _on(detector, engine: str, **config):
    other = copy.deepcopy(detector)
    assert other.use_engine(InferenceConfig(engine=engine, **config)) == engine
    return other


def test_flow_export_matches_torch_on_real_flows(flow_model, sample_frame):
    fast = _on(flow_model, "onnx")
    assert isinstance(fast.engine_, OnnxEngine) and isinstance(flow_model.engine_, TorchEngine)
    proba = fast.predict_proba(sample_frame)
    assert proba.shape == (len(sample_frame), len(flow_model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)  # softmax is inside the graph
    assert max_abs_diff(flow_model, fast, sample_frame) <= PARITY
    assert (fast.predict(sample_frame) == flow_model.predict(sample_frame)).all()
    np.testing.assert_allclose(fast.decision_function(sample_frame), flow_model.decision_function(sample_frame), atol=PARITY)
    # the exporter must leave the detector's own network in eval mode
    assert not flow_model.network_module.training


def test_binned_export_matches_torch(sample_frame):
    binned = cnn_bilstm(input_bins=16, max_epochs=1, verbose=False, num_threads=1).fit(sample_frame.iloc[:2000])
    assert max_abs_diff(binned, _on(binned, "onnx"), sample_frame) <= PARITY


def test_batch_axis_is_dynamic(flow_model, sample_frame):
    fast = _on(flow_model, "onnx", batch_size=7)
    assert fast.predict_proba(sample_frame.iloc[:1]).shape == (1, len(flow_model.classes_))
    assert max_abs_diff(flow_model, fast, sample_frame.iloc[:50]) <= PARITY  # 7 + 7 + ... + 1


def test_window_export_matches_torch(window_model, sample_frame):
    fast = _on(window_model, "onnx")
    inputs = fast.engine_.session.get_inputs()[0]
    assert inputs.shape[1:] == [4, len(window_model.features_.output_names_)]
    assert max_abs_diff(window_model, fast, sample_frame.iloc[:2000]) <= PARITY


def test_falls_back_to_torch_without_onnxruntime(flow_model, sample_frame, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    other = copy.deepcopy(flow_model)
    with caplog.at_level(logging.INFO, logger="flowsentinel.models.deep"):
        assert other.use_engine(InferenceConfig(engine="auto")) == "torch"
    assert "onnxruntime cannot be imported" in caplog.text
    assert max_abs_diff(flow_model, other, sample_frame.iloc[:500]) == 0.0
    with pytest.raises(ConfigError, match="flowsentinel\\[fast\\]"):
        other.use_engine(InferenceConfig(engine="onnx"))


def test_thread_settings_are_applied(flow_model):
    fast = _on(flow_model, "onnx", intra_op_threads=1, inter_op_threads=1)
    options = fast.engine_.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    before = torch.get_num_threads()
    try:
        _on(flow_model, "torch", intra_op_threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_saved_graph_is_used_and_checked(flow_model, sample_frame, tmp_path):
    save_model(flow_model, tmp_path / "m")
    fast = load_model(tmp_path / "m", engine="onnx")
    assert isinstance(fast.engine_, OnnxEngine) and fast.manifest_["estimator"] == "DeepDetector"
    assert max_abs_diff(flow_model, fast, sample_frame.iloc[:1000]) <= PARITY


def test_onnx_scoring_does_not_need_torch(flow_model, sample_frame, tmp_path):
    """A process that scores through ONNX Runtime never imports PyTorch or scikit-learn."""
    import subprocess

    save_model(flow_model, tmp_path / "m")
    sample_frame.iloc[:200].to_csv(tmp_path / "flows.csv", index=False)
    code = (
        "import sys\n"
        "from flowsentinel.persistence import load_model\n"
        "import pandas as pd\n"
        f"det = load_model({str(tmp_path / 'm')!r}, engine='onnx')\n"
        f"print(det.predict(pd.read_csv({str(tmp_path / 'flows.csv')!r})).shape[0])\n"
        "print(sorted(m for m in ('torch', 'sklearn', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split("\n")[:2] == ["200", "[]"], out.stdout + out.stderr


def test_models_without_a_network_have_no_engine_to_choose(sample_frame):
    from flowsentinel.models.trees import ExtraTreesDetector

    trees = ExtraTreesDetector(n_estimators=3, n_jobs=1).fit(sample_frame.iloc[:500])
    assert not hasattr(trees, "use_engine")


def test_slices_are_chosen_by_the_networks_cost(flow_model, sample_frame, monkeypatch):
    from flowsentinel.models import engines

    graph = flow_model.onnx_graph()
    light = OnnxEngine(graph)
    assert light.seconds_per_row() is not None and light.seconds_per_row() < engines.HEAVY_NETWORK_S
    assert light.rows == 1024
    assert OnnxEngine(graph, InferenceConfig(cache_rows=77)).rows == 77
    assert OnnxEngine(graph, InferenceConfig(cache_rows=None)).rows is None
    monkeypatch.setattr(OnnxEngine, "seconds_per_row", lambda self: engines.HEAVY_NETWORK_S * 3)
    heavy = OnnxEngine(graph)
    assert heavy.rows == 256
    # Slices change the speed only: the same probabilities as one run per batch.
    batch = flow_model.model_input(sample_frame.iloc[:1000]).X
    np.testing.assert_array_equal(heavy(batch), OnnxEngine(graph, InferenceConfig(cache_rows=None))(batch))


@pytest.mark.parametrize("bad", [{"engine": "tensorrt"}, {"batch_size": 0}, {"intra_op_threads": 0},
                                 {"cache_rows": 0}, {"cache_rows": "fast"}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        InferenceConfig(**bad)
