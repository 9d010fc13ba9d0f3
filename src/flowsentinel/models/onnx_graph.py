"""The CNN-BiLSTM written straight as an ONNX graph of matrix products, for ONNX Runtime.

PyTorch's exporter turns :class:`~flowsentinel.models.networks.CNNBiLSTMNet`
into ``Conv``, ``MaxPool`` and ``LSTM`` nodes. For the default network
(8 and 16 channels, 16 LSTM units) ONNX Runtime spends more of its time
converting to and from its blocked convolution layout, pooling, and in the
``LSTM`` kernel's per-step work than in arithmetic. :func:`cnn_bilstm_graph`
writes the same function in channels-last order instead:

* each convolution block is one ``MatMul``: the inputs one pooling window
  needs (``pool + kernel - 1`` positions, taken as ``Reshape`` and ``Slice``
  views of the padded sequence) times a matrix that holds the block's
  ``pool`` output positions side by side, with the batch norm folded into
  the weights (in float64); the pooling is a ``ReduceMax`` over those
  positions, taken before the bias and the ReLU (both commute with it);
* the one-layer bidirectional LSTM is unrolled: one ``MatMul`` for the input
  part of every step's gates in both directions, then per step the
  recurrent product and the gate nonlinearities, ending in the same final
  states ``h_n`` the PyTorch network concatenates.

Measured with ``benchmarks/bench_inference.py``-style runs (100,000 flows,
batches of 1,024, one thread; ``docs/performance.md``), the default network
ran about 1.5 times and the windowed default network about 2 times as fast
as the exporter's graph, with probabilities within 1e-7 of PyTorch's. With
a :class:`~flowsentinel.models.networks.BinEncoding` (33 channels a
position) the window products do more arithmetic than ``Conv`` and were
slower, so binned networks, stacked LSTMs and even kernels keep the
exporter's graph: :func:`cnn_bilstm_graph` returns ``None`` for them.

>>> import torch
>>> from flowsentinel.models.networks import CNNBiLSTMNet
>>> cnn_bilstm_graph(CNNBiLSTMNet(10, 3).eval(), (10,)) is not None
True
>>> cnn_bilstm_graph(CNNBiLSTMNet(10, 3, input_bins=4).eval(), (10,)) is None
True
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["cnn_bilstm_graph"]


class _Builder:
    """Nodes and initializers of one graph, with generated names."""

    def __init__(self):
        self.nodes: list = []
        self.initializers: list = []
        self._n = 0

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, value, stem: str = "const", name: str | None = None) -> str:
        from onnx import numpy_helper

        name = name or self._name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(np.array(values, np.int64), "shape")

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs) -> str:
        from onnx import helper

        name = output or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    def slice(self, x: str, start: int, stop: int, axis: int) -> str:
        return self.op("Slice", x, self.ints(start), self.ints(stop), self.ints(axis))


def _covered(net) -> bool:
    from torch import nn

    from .networks import CNNBiLSTMNet

    if not isinstance(net, CNNBiLSTMNet) or net.encoding is not None:
        return False
    lstm = net.lstm
    if lstm.num_layers != 1 or not lstm.bidirectional or not lstm.bias or getattr(lstm, "proj_size", 0):
        return False
    for block in net.features:
        conv = block.conv
        if (conv.kernel_size[0] % 2 == 0 or conv.padding != (conv.kernel_size[0] // 2,) or conv.stride != (1,)
                or conv.dilation != (1,) or conv.groups != 1 or conv.bias is None):
            return False
        if block.bn.running_mean is None or not isinstance(block.pool, (nn.MaxPool1d, nn.Identity)):
            return False
        if isinstance(block.pool, nn.MaxPool1d):
            pool = block.pool
            if pool.stride != pool.kernel_size or pool.padding != 0 or pool.dilation != 1 or pool.ceil_mode:
                return False
    return True


def _folded(block) -> tuple[np.ndarray, np.ndarray]:
    """Convolution weights ``(out, in, kernel)`` and bias with the eval-mode batch norm folded in."""
    conv, bn = block.conv, block.bn
    weight = conv.weight.detach().double().numpy()
    bias = conv.bias.detach().double().numpy()
    gamma = bn.weight.detach().double().numpy() if bn.weight is not None else 1.0
    beta = bn.bias.detach().double().numpy() if bn.bias is not None else 0.0
    scale = gamma / np.sqrt(bn.running_var.double().numpy() + bn.eps)
    return weight * scale[:, None, None], (bias - bn.running_mean.double().numpy()) * scale + beta


def _conv_block(b: _Builder, x: str, length: int, channels: int, block) -> tuple[str, int, int]:
    """``x`` ``(batch, length, channels)`` through one block; returns it and its new length and channels."""
    from torch import nn

    weight, bias = _folded(block)
    out_channels, _, kernel = weight.shape
    pad = kernel // 2
    pool = block.pool.kernel_size if isinstance(block.pool, nn.MaxPool1d) else 1
    pooled = length // pool
    span = pool + kernel - 1  # input positions one pooling window's outputs read
    blocks = math.ceil(span / pool)  # consecutive pool-long pieces that cover them
    total = (pooled + blocks - 1) * pool
    x = b.op("Pad", x, b.ints(0, pad, 0, 0, max(total - length - pad, 0), 0))
    if total < length + pad:
        x = b.slice(x, 0, total, 1)
    x = b.op("Reshape", x, b.ints(0, pooled + blocks - 1, pool * channels))
    pieces = []
    for j in range(blocks):
        piece = b.slice(x, j, j + pooled, 1)
        need = min(pool, span - j * pool)
        pieces.append(b.slice(piece, 0, need * channels, 2) if need < pool else piece)
    windows = b.op("Concat", *pieces, axis=2) if len(pieces) > 1 else pieces[0]  # (batch, pooled, span*channels)
    # Rows: (window position, input channel); columns: (output position in the window, output channel).
    matrix = np.zeros((span, channels, pool, out_channels))
    for q in range(pool):
        for t in range(kernel):
            matrix[q + t, :, q, :] = weight[:, :, t].T
    y = b.op("MatMul", windows, b.const(matrix.reshape(span * channels, pool * out_channels).astype(np.float32), "conv_w"))
    if pool > 1:
        y = b.op("Reshape", y, b.ints(0, pooled, pool, out_channels))
        y = b.op("ReduceMax", y, axes=[2], keepdims=0)
    y = b.op("Add", y, b.const(bias.astype(np.float32), "conv_b"))
    return b.op("Relu", y), pooled, out_channels


def _gates(matrix: np.ndarray) -> np.ndarray:
    """PyTorch's gate order (input, forget, cell, output) as (input, forget, output, cell): sigmoids first."""
    i, f, g, o = np.split(matrix, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def _bilstm(b: _Builder, x: str, length: int, lstm) -> str:
    """Final forward and backward hidden states ``(batch, 2 * hidden)`` of ``x`` ``(batch, length, channels)``."""
    hidden = lstm.hidden_size
    state = {k: v.detach().double().numpy() for k, v in lstm.state_dict().items()}
    suffixes = ("_l0", "_l0_reverse")
    w_in = np.concatenate([_gates(state[f"weight_ih{s}"]).T for s in suffixes], axis=1)
    b_in = np.concatenate([_gates(state[f"bias_ih{s}"] + state[f"bias_hh{s}"]) for s in suffixes])
    proj = b.op("Add", b.op("MatMul", x, b.const(w_in.astype(np.float32), "lstm_w")),
                b.const(b_in.astype(np.float32), "lstm_b"))
    proj = b.op("Reshape", proj, b.ints(0, length * 8 * hidden))  # per position: forward gates, backward gates
    finals = []
    for d, suffix in enumerate(suffixes):
        # A one-step sequence never uses the recurrent weights: no initializer for them then.
        recurrent = b.const(_gates(state[f"weight_hh{suffix}"]).T.astype(np.float32), "lstm_r") if length > 1 else None
        h = c = None
        for step in range(length):
            position = step if d == 0 else length - 1 - step
            start = (position * 2 + d) * 4 * hidden
            gates = b.slice(proj, start, start + 4 * hidden, 1)
            if h is not None:
                gates = b.op("Add", gates, b.op("MatMul", h, recurrent))
            sig = b.op("Sigmoid", b.slice(gates, 0, 3 * hidden, 1))
            cell = b.op("Tanh", b.slice(gates, 3 * hidden, 4 * hidden, 1))
            new = b.op("Mul", b.slice(sig, 0, hidden, 1), cell)
            c = new if c is None else b.op("Add", b.op("Mul", b.slice(sig, hidden, 2 * hidden, 1), c), new)
            h = b.op("Mul", b.slice(sig, 2 * hidden, 3 * hidden, 1), b.op("Tanh", c))
        finals.append(h)
    return b.op("Concat", *finals, axis=1)


def cnn_bilstm_graph(net, input_shape: tuple[int, ...], input_name: str = "model_input",
                     output_name: str = "probabilities", opset: int = 17):
    """``net`` in eval mode, with a softmax on top, as an ``onnx.ModelProto``; ``None`` where not covered.

    ``input_shape`` is one example's shape, as :func:`~flowsentinel.models.engines.export_onnx`
    takes it; the batch axis is dynamic.
    """
    if not _covered(net):
        return None
    from onnx import TensorProto, checker, helper

    b = _Builder()
    if net.mode == "flow":
        (length,) = input_shape
        x, channels = b.op("Unsqueeze", input_name, b.ints(-1)), 1
    else:
        length, channels = input_shape
        x = input_name
    for block in net.features:
        x, length, channels = _conv_block(b, x, length, channels, block)
    state = _bilstm(b, x, length, net.lstm)
    # The head's weights under the names PyTorch's exporter gives them, as the rest of the project knows them.
    head = {f"net.{k}": v.detach().numpy() for k, v in (*net.hidden.named_parameters("hidden"),
                                                          *net.out.named_parameters("out"))}
    weight, bias = (b.const(head[f"net.hidden.{k}"], name=f"net.hidden.{k}") for k in ("weight", "bias"))
    hidden = b.op("Relu", b.op("Gemm", state, weight, bias, transB=1))
    weight, bias = (b.const(head[f"net.out.{k}"], name=f"net.out.{k}") for k in ("weight", "bias"))
    logits = b.op("Gemm", hidden, weight, bias, transB=1)
    b.op("Softmax", logits, output=output_name, axis=1)
    n_classes = net.out.out_features
    graph = helper.make_graph(
        b.nodes, "cnn_bilstm",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *input_shape])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", n_classes])],
        b.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    # The lowest IR version the opset allows, as the PyTorch exporter writes, so older runtimes load it too.
    model = helper.make_model(graph, opset_imports=opsets, producer_name="flowsentinel",
                              ir_version=helper.find_min_ir_version_for(opsets))
    checker.check_model(model)
    return model
