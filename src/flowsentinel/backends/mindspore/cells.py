"""The MindSpore cells of the CNN-BiLSTM, defined once MindSpore is imported.

They subclass ``mindspore.nn.Cell``, so they are built on first use by
:func:`network_classes`; :func:`mindspore_module` imports MindSpore itself.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

from ...errors import ConfigError, FlowsentinelError

__all__ = ["INSTALL_HINT", "MindSporeUnavailableError", "mindspore_module", "network_classes",
           "TORCH_BN_MOMENTUM", "BN_EPS"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the MindSpore backend needs MindSpore: pip install .[mindspore] in its own environment "
    "(MindSpore needs numpy<2, so it cannot share the default environment); see docs/mindspore.md"
)

#: PyTorch's BatchNorm momentum (its default); MindSpore's is one minus it.
TORCH_BN_MOMENTUM = 0.1
#: PyTorch's BatchNorm epsilon (its default); MindSpore takes the same value.
BN_EPS = 1e-5


class MindSporeUnavailableError(FlowsentinelError, ImportError):
    """MindSpore is not installed in this environment: a one-line message saying what to install."""


def mindspore_module(num_threads: int | None = None):
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

    mindspore_module()
    from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

    from ...models.networks import BinEncoding as TorchBinEncoding
    from ...models.networks import sequence_shape

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
                raise ConfigError(f"conv must be 'matmul' or 'native', got {conv!r}")
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

        def __init__(self, n_features, n_classes, mode="flow", window=8, conv_channels=(8, 16), kernel_size=3,
                     pool=6, lstm_hidden=16, lstm_layers=1, dense=32, dropout=0.2, input_bins=0, conv="matmul",
                     lstm="unrolled"):
            super().__init__()
            self.mode = mode
            self.flow_mode = mode == "flow"
            self.binned = input_bins > 0
            self.encoding = BinEncoding(n_features, input_bins) if self.binned else None
            channels, length = sequence_shape(n_features, mode, window, input_bins)
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
                raise ConfigError(f"lstm must be 'unrolled' or 'native', got {lstm!r}")
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
