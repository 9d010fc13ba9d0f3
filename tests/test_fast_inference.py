"""ONNX export and the fast scoring path: parity with PyTorch on real flows, fallback, threads."""

from __future__ import annotations

import copy
import logging
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from flowsentinel.models.deep import CNNBiLSTMDetector  # noqa: E402
from flowsentinel.persistence import save_model  # noqa: E402
from flowsentinel.serving.fast import (  # noqa: E402
    ONNX_FILE,
    FastDetector,
    InferenceConfig,
    OnnxScorer,
    export_onnx,
    fast_detector,
    load_fast_detector,
    max_abs_diff,
    write_onnx,
)

PARITY = 1e-5


@pytest.fixture(scope="module")
def flow_model(sample_frame):
    # Brief training: parity is about the network's arithmetic, not its accuracy.
    return CNNBiLSTMDetector(max_epochs=1, verbose=False, num_threads=1).fit(sample_frame.iloc[:2000])


@pytest.fixture(scope="module")
def window_model(sample_frame):
    return CNNBiLSTMDetector(mode="window", window=4, conv_channels=(16,), lstm_hidden=16, dense=16,
                             max_epochs=1, verbose=False, num_threads=1).fit(sample_frame.iloc[:1500])


def test_flow_export_matches_torch_on_real_flows(flow_model, sample_frame, tmp_path):
    path = tmp_path / ONNX_FILE
    export_onnx(flow_model, path)
    fast = FastDetector(flow_model, InferenceConfig(engine="onnx"), OnnxScorer(path))
    proba = fast.predict_proba(sample_frame)
    assert proba.shape == (len(sample_frame), len(flow_model.classes_))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)  # softmax is inside the graph
    assert max_abs_diff(flow_model, fast, sample_frame) <= PARITY
    assert (fast.predict(sample_frame) == flow_model.predict(sample_frame)).all()
    np.testing.assert_allclose(fast.decision_function(sample_frame), flow_model.decision_function(sample_frame), atol=PARITY)
    # the exporter must leave the detector's own network in eval mode
    assert not flow_model.module_.training


def test_binned_export_matches_torch(sample_frame):
    binned = CNNBiLSTMDetector(input_bins=16, max_epochs=1, verbose=False, num_threads=1).fit(sample_frame.iloc[:2000])
    fast = fast_detector(binned, InferenceConfig(engine="onnx"))
    assert fast.engine_ == "onnx"
    assert max_abs_diff(binned, fast, sample_frame) <= PARITY


def test_batch_axis_is_dynamic(flow_model, sample_frame):
    fast = fast_detector(flow_model, InferenceConfig(engine="onnx", batch_size=7))
    one = fast.predict_proba(sample_frame.iloc[:1])
    assert one.shape == (1, len(flow_model.classes_))
    assert max_abs_diff(flow_model, fast, sample_frame.iloc[:50]) <= PARITY  # 7 + 7 + ... + 1


def test_window_export_matches_torch(window_model, sample_frame):
    fast = fast_detector(window_model, InferenceConfig(engine="onnx"))
    assert fast.engine_ == "onnx"
    inputs = fast.scorer.session.get_inputs()[0]
    assert inputs.shape[1:] == [4, len(window_model.features_.output_names_)]
    assert max_abs_diff(window_model, fast, sample_frame.iloc[:2000]) <= PARITY
    assert fast.mode == "window"


def test_wrapper_keeps_the_detector_contract(flow_model):
    fast = fast_detector(flow_model, InferenceConfig())
    assert fast.threshold_ == flow_model.threshold_
    assert list(fast.classes_) == list(flow_model.classes_)
    assert fast.mode == "flow"
    with pytest.raises(Exception, match="missing"):
        fast.check_columns(["IN_BYTES"], "test.csv")


def test_falls_back_to_torch_without_onnxruntime(flow_model, sample_frame, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with caplog.at_level(logging.INFO, logger="flowsentinel.serving.fast"):
        fast = fast_detector(flow_model, InferenceConfig(engine="auto"))
    assert fast.engine_ == "torch"
    assert "onnxruntime cannot be imported" in caplog.text
    assert max_abs_diff(flow_model, fast, sample_frame.iloc[:500]) == 0.0
    with pytest.raises(ImportError, match="flowsentinel\\[fast\\]"):
        fast_detector(flow_model, InferenceConfig(engine="onnx"))


def test_thread_settings_are_applied(flow_model):
    fast = fast_detector(flow_model, InferenceConfig(engine="onnx", intra_op_threads=1, inter_op_threads=1))
    options = fast.scorer.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)
    before = torch.get_num_threads()
    try:
        fast_detector(flow_model, InferenceConfig(engine="torch", intra_op_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_model_dir_graph_is_used_and_stale_graph_replaced(flow_model, sample_frame, tmp_path, caplog):
    save_model(flow_model, tmp_path)
    assert write_onnx(tmp_path, flow_model) == tmp_path / ONNX_FILE
    fast = load_fast_detector(tmp_path, InferenceConfig(engine="onnx"))
    assert fast.engine_ == "onnx" and fast.manifest_["estimator"] == "CNNBiLSTMDetector"
    assert max_abs_diff(flow_model, fast, sample_frame.iloc[:1000]) <= PARITY

    other = copy.deepcopy(flow_model)
    with torch.no_grad():
        other.module_.out.bias.add_(1.0)
    export_onnx(other, tmp_path / ONNX_FILE)  # a graph from other weights
    with caplog.at_level(logging.WARNING, logger="flowsentinel.serving.fast"):
        fast = load_fast_detector(tmp_path, InferenceConfig(engine="onnx"))
    assert "other weights" in caplog.text
    assert max_abs_diff(flow_model, fast, sample_frame.iloc[:1000]) <= PARITY


def test_models_without_a_network_are_returned_unchanged(sample_frame, tmp_path):
    from flowsentinel.models.trees import ExtraTreesDetector

    trees = ExtraTreesDetector(n_estimators=3, n_jobs=1).fit(sample_frame.iloc[:500])
    assert fast_detector(trees, InferenceConfig()) is trees
    assert write_onnx(tmp_path, trees) is None


def test_other_backends_networks_are_left_alone(flow_model):
    other = copy.copy(flow_model)
    other.module_ = object()  # e.g. a MindSpore cell: not PyTorch, not exportable here
    assert fast_detector(other, InferenceConfig()) is other


@pytest.mark.parametrize("bad", [{"engine": "tensorrt"}, {"batch_size": 0}, {"intra_op_threads": 0}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        InferenceConfig(**bad)
