"""The CNN-BiLSTM in MindSpore, behind the same detector contract as the PyTorch one.

Install with ``pip install .[mindspore]`` in its own environment: MindSpore
needs ``numpy<2``, so it cannot share the default one. MindSpore is imported
only when a model is built, trained or loaded here; without it those raise
:class:`MindSporeUnavailableError` saying what to install.

What is shared with the PyTorch backend, and what is not:

* the estimator (:class:`MindSporeCNNBiLSTMDetector` subclasses
  :class:`~flowsentinel.models.deep.CNNBiLSTMDetector`: same parameters,
  labels, preprocessing, windowing, class weights, scoring);
* the epoch loop, early stopping on validation macro-F1, best-epoch
  checkpoint and progress bar (:class:`~flowsentinel.training.loop.Trainer`
  and its callbacks); only the training step and the forward pass are
  MindSpore's, both compiled in graph (jit) mode;
* the initial weights: drawn by PyTorch's initialisers from the same
  ``random_state``, so both backends start from the same network;
* the saved model: the canonical safetensors layout of
  :class:`~flowsentinel.models.networks.CNNBiLSTMNet`, under the estimator
  name ``CNNBiLSTMDetector`` with ``"backend": "mindspore"`` in the
  manifest, so :func:`flowsentinel.persistence.load_model` (PyTorch) loads
  a MindSpore-trained model and :func:`load_mindspore_model` loads a
  PyTorch-trained one.

The layouts differ in three places, which the two conversion functions
handle (they need only numpy):

* convolution weights are ``(out, in, 1, k)`` in MindSpore, ``(out, in, k)``
  in PyTorch;
* batch norm is ``gamma``/``beta``/``moving_mean``/``moving_variance``
  against ``weight``/``bias``/``running_mean``/``running_var`` (and
  MindSpore's momentum is one minus PyTorch's);
* PyTorch's ``num_batches_tracked`` has no MindSpore counterpart and is not
  part of the canonical layout.

MindSpore's ``nn.LSTM`` (CPU) names and orders its weights as PyTorch does
(gates i, f, g, o; separate input and hidden biases), so they pass unchanged;
the parity tests guard that.

>>> import numpy as np
>>> torch_state = {
...     "features.0.conv.weight": np.zeros((32, 1, 3), np.float32),
...     "features.0.bn.running_var": np.ones(32, np.float32),
...     "features.0.bn.num_batches_tracked": np.array(7),
...     "lstm.weight_hh_l0": np.zeros((128, 32), np.float32),
... }
>>> ms_state = torch_layout_to_mindspore(torch_state)
>>> {name: value.shape for name, value in ms_state.items()}
{'features.0.conv.weight': (32, 1, 1, 3), 'features.0.bn.moving_variance': (32,), 'lstm.weight_hh_l0': (128, 32)}
>>> sorted(mindspore_layout_to_torch(ms_state))
['features.0.bn.running_var', 'features.0.conv.weight', 'lstm.weight_hh_l0']
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..models.deep import CNNBiLSTMDetector, _val_metrics
from ..training.loop import BatchSource, Trainer

__all__ = [
    "INSTALL_HINT",
    "MindSporeUnavailableError",
    "MindSporeCNNBiLSTMDetector",
    "MindSporeTrainer",
    "torch_layout_to_mindspore",
    "mindspore_layout_to_torch",
    "canonical_state",
    "load_canonical_state",
    "load_mindspore_model",
    "predict_logits",
    "network_classes",
]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the MindSpore backend needs MindSpore: pip install .[mindspore] in its own environment "
    "(MindSpore needs numpy<2, so it cannot share the default environment); see docs/mindspore.md"
)

#: PyTorch's BatchNorm momentum (its default); MindSpore's is one minus it.
TORCH_BN_MOMENTUM = 0.1
#: PyTorch's BatchNorm epsilon (its default); MindSpore takes the same value.
BN_EPS = 1e-5
#: The gradient-norm clip of the shared training step (as in ``Trainer.train_step``).
CLIP_NORM = 5.0


class MindSporeUnavailableError(ImportError, ValueError):
    """MindSpore is not installed in this environment.

    Also a ``ValueError``, so the command line reports it as a one-line
    usage problem (install the extra) rather than a crash.
    """


# ---- layout conversion (numpy only) ----------------------------------------------------------

_BLOCK_PARAM = re.compile(r"^(features\.\d+)\.(conv|bn)\.(\w+)$")
_BN_TORCH_TO_MS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BN_MS_TO_TORCH = {v: k for k, v in _BN_TORCH_TO_MS.items()}


def torch_layout_to_mindspore(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical (PyTorch state-dict) names and shapes -> MindSpore parameter names and shapes.

    ``num_batches_tracked`` entries are dropped. Values are copied, never
    changed: the conversion is exact.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        value = np.asarray(value)
        match = _BLOCK_PARAM.match(name)
        if match:
            block, layer, leaf = match.groups()
            if layer == "bn":
                if leaf not in _BN_TORCH_TO_MS:
                    raise ValueError(f"{name}: unknown batch-norm entry {leaf!r} (known: {', '.join(_BN_TORCH_TO_MS)})")
                leaf = _BN_TORCH_TO_MS[leaf]
            elif leaf == "weight":
                if value.ndim != 3:
                    raise ValueError(f"{name}: expected a (out, in, kernel) convolution weight, got shape {value.shape}")
                value = value[:, :, None, :]
            name = f"{block}.{layer}.{leaf}"
        out[name] = np.ascontiguousarray(value)
    return out


def mindspore_layout_to_torch(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MindSpore parameter names and shapes -> the canonical (PyTorch state-dict) layout."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        value = np.asarray(value)
        match = _BLOCK_PARAM.match(name)
        if match:
            block, layer, leaf = match.groups()
            if layer == "bn":
                if leaf not in _BN_MS_TO_TORCH:
                    raise ValueError(f"{name}: unknown batch-norm parameter {leaf!r} (known: {', '.join(_BN_MS_TO_TORCH)})")
                leaf = _BN_MS_TO_TORCH[leaf]
            elif leaf == "weight":
                if value.ndim != 4 or value.shape[2] != 1:
                    raise ValueError(f"{name}: expected an (out, in, 1, kernel) convolution weight, got shape {value.shape}")
                value = value[:, :, 0, :]
            name = f"{block}.{layer}.{leaf}"
        out[name] = np.ascontiguousarray(value)
    return out


# ---- MindSpore itself, imported on first use --------------------------------------------------


def _mindspore(num_threads: int | None = None):
    """Import MindSpore, once setting its CPU kernel threads.

    MindSpore defaults to 25 kernel threads whatever the machine; on a small
    shared CPU that oversubscribes it badly, so the default here is the cores
    this process may use. The setting is per process and can be made once.
    """
    # MindSpore logs a warning each time a new model compiles its graphs ("compiled again"),
    # which is expected here; keep errors only unless GLOG_v asks for more.
    os.environ.setdefault("GLOG_v", "3")
    try:
        import mindspore
    except ImportError as exc:
        raise MindSporeUnavailableError(INSTALL_HINT) from exc
    from mindspore.device_context.cpu import op_tuning

    conf = op_tuning.RuntimeConf.get_instance()
    if not conf.is_op_threads_num_configured():
        n = int(num_threads) if num_threads else len(os.sched_getaffinity(0))
        op_tuning.threads_num(max(n, 1))
        log.debug("MindSpore CPU kernel threads: %d", n)
    return mindspore


@functools.cache
def network_classes():
    """The MindSpore cells, defined on first use (they subclass ``mindspore.nn.Cell``).

    Returns a namespace with ``MatmulConv1d``, ``UnrolledBiLSTM``,
    ``ConvBlock``, ``BinEncoding`` and ``MindSporeCNNBiLSTMNet``.
    """
    import types

    _mindspore()
    from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

    from ..models.networks import BinEncoding as TorchBinEncoding
    from ..models.networks import sequence_shape

    class MatmulConv1d(nn.Cell):
        """``Conv1d(k, padding=k//2, bias)`` on channels-last input, as one matrix multiply.

        The input's ``k`` shifted windows are laid side by side, ``(B, L, k*C)``,
        and multiplied by the weight reshaped to ``(k*C, out)``. MindSpore's CPU
        ``nn.Conv1d`` is many times slower on these shapes. The weight keeps
        ``nn.Conv1d``'s ``(out, in, 1, k)`` shape, so the two are interchangeable.
        """

        def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
            super().__init__()
            self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
            self.padding = kernel_size // 2
            self.weight = Parameter(Tensor(np.zeros((out_channels, in_channels, 1, kernel_size), np.float32)), name="weight")
            self.bias = Parameter(Tensor(np.zeros(out_channels, np.float32)), name="bias")

        def construct(self, x):  # (B, L, C)
            batch = x.shape[0]
            length = x.shape[1] + 2 * self.padding - self.kernel_size + 1
            if self.padding > 0:
                # Zeros concatenated, not ops.pad: in a compiled training step,
                # ops.pad's gradient into the previous layer was right on the first
                # call and wrong on every later one (MindSpore 2.10, CPU), so the
                # first convolution block learned from garbage.
                edge = ops.zeros((batch, self.padding, x.shape[2]), x.dtype)
                x = ops.cat((edge, x, edge), axis=1)
            windows = [x[:, j : j + length, :] for j in range(self.kernel_size)]
            cols = ops.cat(windows, axis=2) if self.kernel_size > 1 else windows[0]
            w = self.weight.reshape(self.out_channels, self.in_channels, self.kernel_size)
            w = w.transpose(2, 1, 0).reshape(self.kernel_size * self.in_channels, self.out_channels)
            y = ops.matmul(cols.reshape(batch * length, self.kernel_size * self.in_channels), w) + self.bias
            return y.reshape(batch, length, self.out_channels)

    class UnrolledBiLSTM(nn.Cell):
        """Bidirectional ``batch_first`` LSTM unrolled over its (short, fixed) sequence.

        Returns the final hidden state of the last layer in each direction,
        ``(forward, backward)``, which is all the network reads. Same
        parameters as ``nn.LSTM`` (``weight_ih_l0``, ``weight_hh_l0_reverse``,
        ...: gates i, f, g, o; input and hidden biases apart), so the two are
        interchangeable; MindSpore's CPU ``nn.LSTM`` backward pass is many
        times slower than this graph of matrix multiplies on these shapes.
        """

        def __init__(self, input_size, hidden_size, num_layers=1, dropout=0.0):
            super().__init__()
            self.hidden_size, self.num_layers = hidden_size, num_layers
            w_ih, w_hh, b_ih, b_hh = [], [], [], []
            for layer in range(num_layers):
                in_size = input_size if layer == 0 else 2 * hidden_size
                for suffix in ("", "_reverse"):
                    w_ih.append(Parameter(Tensor(np.zeros((4 * hidden_size, in_size), np.float32)),
                                          name=f"weight_ih_l{layer}{suffix}"))
                    w_hh.append(Parameter(Tensor(np.zeros((4 * hidden_size, hidden_size), np.float32)),
                                          name=f"weight_hh_l{layer}{suffix}"))
                    b_ih.append(Parameter(Tensor(np.zeros(4 * hidden_size, np.float32)), name=f"bias_ih_l{layer}{suffix}"))
                    b_hh.append(Parameter(Tensor(np.zeros(4 * hidden_size, np.float32)), name=f"bias_hh_l{layer}{suffix}"))
            self.w_ih_list, self.w_hh_list = ParameterTuple(w_ih), ParameterTuple(w_hh)
            self.b_ih_list, self.b_hh_list = ParameterTuple(b_ih), ParameterTuple(b_hh)
            self.drop = nn.Dropout(p=float(dropout))

        def _direction(self, x, k, reverse):
            batch, length, size = x.shape
            h4 = 4 * self.hidden_size
            xp = ops.matmul(x.reshape(batch * length, size), self.w_ih_list[k].T) + self.b_ih_list[k] + self.b_hh_list[k]
            xp = xp.reshape(batch, length, h4)
            h = ops.zeros((batch, self.hidden_size), x.dtype)
            c = ops.zeros((batch, self.hidden_size), x.dtype)
            outs = []
            for step in range(length):
                t = length - 1 - step if reverse else step
                gates = xp[:, t, :] + ops.matmul(h, self.w_hh_list[k].T)
                i, f, g, o = ops.split(gates, self.hidden_size, axis=1)
                c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
                h = ops.sigmoid(o) * ops.tanh(c)
                outs.append(h)
            return h, outs

        def construct(self, x):
            h_fwd, h_bwd = None, None
            for layer in range(self.num_layers):
                h_fwd, outs_fwd = self._direction(x, 2 * layer, False)
                h_bwd, outs_bwd = self._direction(x, 2 * layer + 1, True)
                if layer + 1 < self.num_layers:
                    outs_bwd = outs_bwd[::-1]
                    x = self.drop(ops.cat((ops.stack(outs_fwd, axis=1), ops.stack(outs_bwd, axis=1)), axis=2))
            return h_fwd, h_bwd

    class ConvBlock(nn.Cell):
        """Convolution, batch norm, ReLU, max pooling, dropout, on ``(B, L, C)``."""

        def __init__(self, in_channels, out_channels, kernel_size, pool, dropout, conv="matmul"):
            super().__init__()
            if conv == "matmul":
                self.conv = MatmulConv1d(in_channels, out_channels, kernel_size)
            elif conv == "native":
                # MindSpore's defaults differ from PyTorch's: no bias, "same" padding, stride-1 pooling.
                self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, pad_mode="pad",
                                      padding=kernel_size // 2, has_bias=True)
            else:
                raise ValueError(f"conv must be 'matmul' or 'native', got {conv!r}")
            self.native = conv == "native"
            self.bn = nn.BatchNorm1d(out_channels, eps=BN_EPS, momentum=1.0 - TORCH_BN_MOMENTUM)
            self.act = nn.ReLU()
            self.pool = int(pool)
            self.drop = nn.Dropout(p=float(dropout))

        def construct(self, x):
            if self.native:
                y = self.conv(x.transpose(0, 2, 1)).transpose(0, 2, 1)
            else:
                y = self.conv(x)
            batch, length, channels = y.shape
            # Per-channel statistics over batch and length, as BatchNorm1d on (B, C, L).
            y = self.bn(y.reshape(batch * length, channels)).reshape(batch, length, channels)
            if self.pool > 1:
                kept = length // self.pool  # as MaxPool1d: a ragged tail is dropped
                y = y[:, : kept * self.pool, :].reshape(batch, kept, self.pool, channels).max(axis=2)
            # ReLU after pooling: the same result (both are monotone) on a tensor `pool` times smaller.
            return self.drop(self.act(y))

    class BinEncoding(nn.Cell):
        """:class:`~flowsentinel.models.networks.BinEncoding`: the value, then its share of each quantile bin."""

        def __init__(self, n_features, bins):
            super().__init__()
            self.edges = Parameter(Tensor(np.zeros((n_features, bins + 1), np.float32)), name="edges",
                                   requires_grad=False)
            self.min_width = float(TorchBinEncoding.MIN_WIDTH)

        def construct(self, x):
            lo = self.edges[:, :-1]
            width = ops.clamp(self.edges[:, 1:] - lo, min=self.min_width)
            share = ops.clamp((x.expand_dims(-1) - lo) / width, 0.0, 1.0)
            return ops.cat((x.expand_dims(-1), share), axis=-1)

    class MindSporeCNNBiLSTMNet(nn.Cell):
        """:class:`~flowsentinel.models.networks.CNNBiLSTMNet` in MindSpore.

        Same arguments and the same function; works channels-last throughout
        (the layout the LSTM reads), so no transposes. ``conv`` picks the
        convolution: ``matmul`` (default, fast on CPU) or ``native``
        (``nn.Conv1d``); ``lstm`` the recurrence: ``unrolled`` (default, fast
        on CPU for the few steps the pooled sequence has) or ``native``
        (``nn.LSTM``). Each pair holds the same parameters.
        """

        def __init__(self, n_features, n_classes, mode="flow", window=8, conv_channels=(32, 64), kernel_size=3,
                     pool=2, lstm_hidden=64, lstm_layers=1, dense=64, dropout=0.2, bins=0, conv="matmul",
                     lstm="unrolled"):
            super().__init__()
            self.mode = mode
            self.flow_mode = mode == "flow"
            self.binned = bins > 0
            self.encoding = BinEncoding(n_features, bins) if self.binned else None
            channels, length = sequence_shape(n_features, mode, window, bins)
            blocks = []
            for out in conv_channels:
                p = pool if length >= pool else 1
                blocks.append(ConvBlock(channels, int(out), kernel_size, p, dropout, conv))
                channels, length = int(out), length // p
            self.features = nn.CellList(blocks)
            self.seq_len = length
            lstm_dropout = float(dropout) if lstm_layers > 1 else 0.0
            if lstm == "unrolled":
                self.lstm = UnrolledBiLSTM(channels, lstm_hidden, lstm_layers, lstm_dropout)
            elif lstm == "native":
                self.lstm = nn.LSTM(channels, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                                    bidirectional=True, dropout=lstm_dropout)
            else:
                raise ValueError(f"lstm must be 'unrolled' or 'native', got {lstm!r}")
            self.native_lstm = lstm == "native"
            self.hidden = nn.Dense(2 * lstm_hidden, dense)
            self.head_act = nn.ReLU()
            self.head_drop = nn.Dropout(p=float(dropout))
            self.out = nn.Dense(dense, n_classes)

        def construct(self, x):
            # Channels-last: per-flow (B, F) -> (B, F, 1); windowed (B, W, F) is already (B, L, C).
            # With the bin encoding: per-flow (B, F, 1+K); windowed (B, W, F*(1+K)), as PyTorch flattens.
            if self.binned:
                x = self.encoding(x)
                if not self.flow_mode:
                    x = x.reshape(x.shape[0], x.shape[1], -1)
            elif self.flow_mode:
                x = x.expand_dims(2)
            for block in self.features:
                x = block(x)
            if self.native_lstm:
                _, (h_n, _) = self.lstm(x)
                state = ops.cat((h_n[-2], h_n[-1]), axis=1)
            else:
                h_fwd, h_bwd = self.lstm(x)
                state = ops.cat((h_fwd, h_bwd), axis=1)
            return self.out(self.head_drop(self.head_act(self.hidden(state))))

    return types.SimpleNamespace(MatmulConv1d=MatmulConv1d, UnrolledBiLSTM=UnrolledBiLSTM, ConvBlock=ConvBlock,
                                 BinEncoding=BinEncoding, MindSporeCNNBiLSTMNet=MindSporeCNNBiLSTMNet)


def __getattr__(name: str):
    # The cells subclass mindspore.nn.Cell, so they exist only once MindSpore is imported.
    if name in ("MindSporeCNNBiLSTMNet", "ConvBlock", "MatmulConv1d", "UnrolledBiLSTM", "BinEncoding"):
        return getattr(network_classes(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---- weights in and out of a cell --------------------------------------------------------------


def canonical_state(net) -> dict[str, np.ndarray]:
    """A MindSpore network's weights in the canonical (PyTorch) layout, as numpy copies."""
    return mindspore_layout_to_torch({name: p.asnumpy().copy() for name, p in net.parameters_dict().items()})


def load_canonical_state(net, state: dict[str, np.ndarray]) -> None:
    """Set a MindSpore network's weights from a canonical (PyTorch) layout state; exact.

    Raises ``ValueError`` naming what is missing, unexpected or misshapen.
    """
    ms_state = torch_layout_to_mindspore(state)
    params = net.parameters_dict()
    missing = sorted(set(params) - set(ms_state))
    unexpected = sorted(set(ms_state) - set(params))
    wrong = [f"{k} {ms_state[k].shape} vs {tuple(params[k].shape)}" for k in sorted(set(params) & set(ms_state))
             if tuple(ms_state[k].shape) != tuple(params[k].shape)]
    if missing or unexpected or wrong:
        raise ValueError(f"weights do not fit the architecture (missing {missing}, unexpected {unexpected}, shapes {wrong})")
    for name, param in params.items():
        copy_into(param, ms_state[name])


def copy_into(param, value: np.ndarray) -> None:
    """Write ``value`` into ``param``'s own storage.

    In place (``ops.assign``), not ``Parameter.set_data``: set_data gives the
    parameter new storage, and a pass compiled before it (the forward pass,
    when training restores its best epoch) keeps computing with the old values.
    """
    from mindspore import Tensor, ops

    ops.assign(param, Tensor(np.ascontiguousarray(value, dtype=np.float32)))


def _torch_initial_state(n_inputs: int, n_classes: int, kwargs: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """PyTorch's initial weights for the same architecture and seed."""
    import torch

    from ..models.networks import CNNBiLSTMNet

    torch.manual_seed(seed)
    net = CNNBiLSTMNet(n_inputs, n_classes, **kwargs)
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


# ---- compiled steps ----------------------------------------------------------------------------


def make_forward(net) -> Callable:
    """The network's forward pass compiled in graph (jit) mode; call with the net in eval mode."""
    ms = _mindspore()

    @ms.jit
    def forward(x):
        return net(x)

    return forward


def make_train_step(net, optimizer, weights: np.ndarray | None, clip_norm: float = CLIP_NORM) -> Callable:
    """One compiled training step: weighted cross-entropy, gradient clipping, optimizer update."""
    ms = _mindspore()
    from mindspore import Tensor, ops

    weight = None if weights is None else Tensor(np.asarray(weights, np.float32))

    def loss_fn(x, y):
        return ops.cross_entropy(net(x), y, weight=weight)

    grad_fn = ms.value_and_grad(loss_fn, None, optimizer.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        grads = ops.clip_by_global_norm(grads, clip_norm)
        optimizer(grads)
        return loss

    return step


def _bucket(n: int, batch_size: int) -> int:
    """Rows to pad a batch of ``n`` to: a power of two (at most ``batch_size``).

    Each batch shape compiles its own graph; powers of two bound how many a
    stream of odd-sized frames can cause.
    """
    return min(1 << max(int(n) - 1, 0).bit_length(), max(batch_size, n))


def predict_logits(forward: Callable, source: BatchSource, batch_size: int = 4096) -> np.ndarray:
    """Logits for every example of ``source`` through a compiled ``forward``."""
    from mindspore import Tensor

    outs = []
    for start in range(0, len(source), batch_size):
        index = np.arange(start, min(start + batch_size, len(source)))
        xb = source.take(index)
        size = _bucket(len(xb), batch_size)
        if size > len(xb):
            xb = np.concatenate([xb, np.zeros((size - len(xb),) + xb.shape[1:], np.float32)])
        outs.append(forward(Tensor(np.ascontiguousarray(xb, np.float32))).asnumpy()[: len(index)])
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


# ---- the shared training loop, with MindSpore's step -------------------------------------------


class _CanonicalStateView:
    """What the shared callbacks see as ``trainer.module``: weights as canonical numpy dicts."""

    def __init__(self, net):
        self.net = net

    def state_dict(self) -> dict[str, np.ndarray]:
        return canonical_state(self.net)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        load_canonical_state(self.net, state)


class _EpochCosine:
    """``CosineAnnealingLR`` stepped once per epoch, as the PyTorch backend's scheduler."""

    def __init__(self, optimizer, t_max: int):
        from mindspore.experimental.optim.lr_scheduler import CosineAnnealingLR

        self.inner = CosineAnnealingLR(optimizer, T_max=t_max)

    def step(self) -> None:
        self.inner.step()


class MindSporeTrainer(Trainer):
    """The shared :class:`~flowsentinel.training.loop.Trainer` with MindSpore's step and forward.

    Epochs, shuffling, callbacks (early stopping, best checkpoint, progress)
    and the validation metrics are the shared ones; ``loss_fn`` (a PyTorch
    loss on numpy logits) gives the validation loss exactly as the PyTorch
    backend computes it.
    """

    def __init__(self, net, train_step: Callable, forward: Callable, loss_fn, metric_fn, **kwargs):
        super().__init__(_CanonicalStateView(net), loss_fn, None, metric_fn, **kwargs)
        self.net, self.step, self.forward = net, train_step, forward

    def train_step(self, xb, yb) -> float:
        from mindspore import Tensor

        self.net.set_train(True)
        loss = self.step(Tensor(np.asarray(xb, np.float32)), Tensor(np.asarray(yb, np.int32)))
        return float(loss.asnumpy())

    def validation_step(self, source: BatchSource, y: np.ndarray) -> tuple[float, dict[str, float]]:
        import torch

        self.net.set_train(False)
        logits = predict_logits(self.forward, source)
        with torch.no_grad():
            loss = float(self.loss_fn(torch.from_numpy(logits), torch.from_numpy(y)))
        return loss, self.metric_fn(y, logits)


# ---- the estimator -----------------------------------------------------------------------------


class MindSporeCNNBiLSTMDetector(CNNBiLSTMDetector):
    """:class:`~flowsentinel.models.deep.CNNBiLSTMDetector` trained and scored in MindSpore.

    Same parameters (read from the PyTorch class, so its defaults are the
    defaults here), the same shared training loop, graph-mode (jit) training
    step and forward pass on CPU. ``module_`` is the MindSpore network;
    :meth:`canonical_state` gives its weights in the canonical layout.
    ``num_threads`` sets MindSpore's CPU kernel threads (once per process;
    default: the cores this process may use).

    Saved with :func:`flowsentinel.persistence.save_model`, it records
    ``"backend": "mindspore"`` and the estimator it mirrors,
    ``CNNBiLSTMDetector``, so either backend loads it.
    """

    #: Recorded in the manifest.
    backend = "mindspore"
    #: The estimator and network a saved model names: this one's PyTorch twin.
    canonical_estimator = "CNNBiLSTMDetector"
    canonical_network = "CNNBiLSTMNet"
    #: Convolution (``matmul`` or ``native``) and LSTM (``unrolled`` or ``native``) implementations
    #: (see ``MindSporeCNNBiLSTMNet``). Not parameters: a saved model must rebuild under
    #: PyTorch's estimator, whose parameters are this one's.
    conv_impl = "matmul"
    lstm_impl = "unrolled"

    def build_module(self, n_inputs: int, n_classes: int):
        """The MindSpore network, initialised with PyTorch's initial weights for ``random_state``."""
        _mindspore(self.num_threads)
        kwargs = self.module_kwargs()
        net = network_classes().MindSporeCNNBiLSTMNet(n_inputs, n_classes, conv=self.conv_impl, lstm=self.lstm_impl,
                                                      **kwargs)
        load_canonical_state(net, _torch_initial_state(n_inputs, n_classes, kwargs, self.random_state))
        net.set_train(False)
        return net

    def _set_input_edges(self, edges: np.ndarray) -> None:
        copy_into(self.module_.encoding.edges, edges)

    def canonical_state(self) -> dict[str, np.ndarray]:
        """The fitted weights in the canonical (PyTorch state-dict) layout."""
        self._check_fitted()
        return canonical_state(self.module_)

    def _compiled_forward(self) -> Callable:
        cached = getattr(self, "_forward_cache", None)
        if cached is None or cached[0] is not self.module_:
            cached = (self.module_, make_forward(self.module_))
            self._forward_cache = cached
        return cached[1]

    # ---- training ------------------------------------------------------
    # DeepClassifier.fit runs the steps; only seeding, the trainer (optimizer and
    # compiled step), switching to inference and the forward pass are MindSpore's.
    def _seed(self) -> None:
        ms = _mindspore(self.num_threads)
        import torch

        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        ms.set_seed(self.random_state)

    def make_trainer(self, weights: np.ndarray | None) -> "MindSporeTrainer":
        import torch
        from mindspore.experimental.optim import AdamW

        optimizer = AdamW(self.module_.trainable_params(), lr=self.lr, weight_decay=self.weight_decay)
        val_loss = torch.nn.CrossEntropyLoss(weight=None if weights is None else torch.tensor(weights, dtype=torch.float32))
        return MindSporeTrainer(
            self.module_,
            make_train_step(self.module_, optimizer, weights),
            self._compiled_forward(),
            val_loss,
            _val_metrics,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            callbacks=self.training_callbacks(),
            seed=self.random_state,
            scheduler=_EpochCosine(optimizer, max(self.max_epochs, 1)),
        )

    def _set_eval(self) -> None:
        self.module_.set_train(False)

    def _source_proba(self, source) -> np.ndarray:
        logits = predict_logits(self._compiled_forward(), source)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    # ---- scoring -------------------------------------------------------
    def logits(self, X: pd.DataFrame, batch_size: int = 4096) -> np.ndarray:
        matrix = self._transform(X)
        self.module_.set_train(False)
        return predict_logits(self._compiled_forward(), self._source(X, matrix), batch_size)


# ---- loading -----------------------------------------------------------------------------------


def load_mindspore_model(directory: str | Path, num_threads: int | None = None) -> MindSporeCNNBiLSTMDetector:
    """Load a CNN-BiLSTM model directory (trained with either backend) into MindSpore.

    The directory is read and checked by :func:`flowsentinel.persistence.load_model`
    (preprocessing, classes, threshold, weights against the architecture);
    the weights are then copied, exactly, into the MindSpore network.
    """
    from ..persistence import ModelLoadError, load_model, read_manifest

    _mindspore(num_threads)
    manifest = read_manifest(directory)
    name = manifest.get("estimator")
    if name != MindSporeCNNBiLSTMDetector.canonical_estimator:
        raise ModelLoadError(f"{directory}: the MindSpore backend runs CNN-BiLSTM models only; "
                             f"this one is {name!r}: drop --backend mindspore")
    layout = manifest.get("architecture", {}).get("weights_layout")
    if layout != "torch-state-dict-v1":
        raise ModelLoadError(f"{directory}: unknown weights layout {layout!r} (expected 'torch-state-dict-v1')")
    twin = load_model(directory)
    detector = MindSporeCNNBiLSTMDetector(**twin.get_params(deep=False))
    if num_threads is not None:
        detector.num_threads = num_threads
    for attr in ("features_", "n_features_in_", "feature_names_in_", "classes_", "threshold_", "history_",
                 "best_epoch_", "manifest_"):
        if hasattr(twin, attr):
            setattr(detector, attr, getattr(twin, attr))
    arch = manifest["architecture"]
    detector.module_ = network_classes().MindSporeCNNBiLSTMNet(arch["n_inputs"], arch["n_classes"],
                                                               conv=detector.conv_impl, lstm=detector.lstm_impl,
                                                               **detector.module_kwargs())
    state = {k: v.detach().numpy() for k, v in twin.module_.state_dict().items() if not k.endswith("num_batches_tracked")}
    try:
        load_canonical_state(detector.module_, state)
    except ValueError as exc:
        raise ModelLoadError(f"{directory}: {exc}") from None
    detector.module_.set_train(False)
    return detector
