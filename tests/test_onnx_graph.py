"""The CNN-BiLSTM written as matrix products: the same probabilities as PyTorch, fallbacks where not covered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from flowsentinel.models.engines import export_onnx  # noqa: E402
from flowsentinel.models.networks import CNNBiLSTMNet  # noqa: E402
from flowsentinel.models.onnx_graph import cnn_bilstm_graph  # noqa: E402

PARITY = 1e-5


def _net(n_features: int, n_classes: int, **kw) -> CNNBiLSTMNet:
    torch.manual_seed(7)
    net = CNNBiLSTMNet(n_features, n_classes, **kw)
    # Batch norms with statistics of their own, so that folding them into the weights is exercised.
    with torch.no_grad():
        for block in net.features:
            block.bn.running_mean.uniform_(-0.5, 0.5)
            block.bn.running_var.uniform_(0.3, 2.0)
            block.bn.weight.uniform_(0.5, 1.5)
            block.bn.bias.uniform_(-0.3, 0.3)
    return net.eval()


def _run(graph: bytes, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    return session.run(None, {"model_input": x})[0]


CASES = {
    "default per-flow": (74, dict()),
    "pool does not divide the inputs": (23, dict(pool=4)),
    "no pooling, kernel 5": (9, dict(conv_channels=(6,), kernel_size=5, pool=1)),
    "pool shorter than the kernel": (40, dict(conv_channels=(4, 5), kernel_size=5, pool=2)),
    "wide, three blocks": (70, dict(conv_channels=(8, 16, 12), pool=3, lstm_hidden=24, dense=20)),
    "windowed": (74, dict(mode="window", window=8)),
    "windowed, short window": (30, dict(mode="window", window=3, conv_channels=(16,), pool=6)),
    "windowed, long window": (12, dict(mode="window", window=16, conv_channels=(8, 8), pool=2, lstm_hidden=8)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_graph_matches_torch(case):
    n_features, kw = CASES[case]
    net = _net(n_features, 5, **kw)
    shape = (n_features,) if kw.get("mode", "flow") == "flow" else (kw["window"], n_features)
    graph = export_onnx(net, shape)
    ops = {node.op_type for node in onnx.load_from_string(graph).graph.node}
    assert "MatMul" in ops and not ops & {"Conv", "LSTM", "MaxPool"}, "the matrix-product graph was not used"
    x = np.random.default_rng(1).normal(0.0, 2.0, size=(300, *shape)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    got = _run(graph, x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=PARITY)
    assert _run(graph, x[:1]).shape == (1, 5)  # the batch axis is dynamic


@pytest.mark.parametrize("case", ["default per-flow", "windowed"])
def test_every_initializer_is_used(case):
    # The windowed default network's LSTM walks one step: a graph that still carried its recurrent
    # weights made ONNX Runtime print a warning on every detect run.
    n_features, kw = CASES[case]
    shape = (n_features,) if kw.get("mode", "flow") == "flow" else (kw["window"], n_features)
    model = onnx.load_from_string(export_onnx(_net(n_features, 3, **kw), shape))
    used = {name for node in model.graph.node for name in node.input}
    assert [init.name for init in model.graph.initializer if init.name not in used] == []


def test_training_mode_network_is_exported_in_eval_semantics():
    net = _net(20, 3)
    net.train()
    graph = export_onnx(net, (20,))
    assert net.training  # left as it was
    x = np.random.default_rng(2).normal(size=(50, 20)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net.eval()(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(_run(graph, x), expected, atol=PARITY)


@pytest.mark.parametrize("kw", [dict(input_bins=8), dict(lstm_layers=2), dict(kernel_size=4)],
                         ids=["binned", "two LSTM layers", "even kernel"])
def test_uncovered_networks_keep_the_exporter_graph(kw):
    net = _net(24, 4, **kw)
    assert cnn_bilstm_graph(net, (24,)) is None
    graph = export_onnx(net, (24,))
    assert "LSTM" in {node.op_type for node in onnx.load_from_string(graph).graph.node}
    x = np.random.default_rng(3).normal(size=(40, 24)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(_run(graph, x), expected, atol=PARITY)


def test_metadata_is_kept():
    graph = export_onnx(_net(10, 2), (10,), metadata={"flowsentinel.mode": "flow"})
    props = {p.key: p.value for p in onnx.load_from_string(graph).metadata_props}
    assert props == {"flowsentinel.mode": "flow"}
