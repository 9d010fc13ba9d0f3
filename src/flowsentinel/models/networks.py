"""PyTorch networks (``nn.Module``), kept apart from the estimators that train them.

Every network takes a float32 batch shaped ``(batch, n_features)`` in per-flow
mode or ``(batch, window, n_features)`` in windowed mode, and returns class
logits ``(batch, n_classes)``.

The state-dict names and shapes of :class:`CNNBiLSTMNet` are the project's
canonical weight layout (saved as safetensors): other backends convert to and
from it.

>>> import torch
>>> net = CNNBiLSTMNet(n_features=20, n_classes=5).eval()
>>> net(torch.zeros(3, 20)).shape
torch.Size([3, 5])
>>> net = CNNBiLSTMNet(n_features=20, n_classes=2, mode="window", window=8).eval()
>>> net(torch.zeros(3, 8, 20)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

__all__ = ["BinEncoding", "ConvBlock", "CNNBiLSTMNet", "as_conv_input", "conv_stack", "quantile_edges", "sequence_shape"]


def sequence_shape(n_features: int, mode: str, window: int, bins: int = 0) -> tuple[int, int]:
    """(channels, length) that the convolutions see.

    Per-flow: the feature vector is the sequence, with one channel per input
    (the value, plus ``bins`` bin channels under :class:`BinEncoding`).
    Windowed: each flow's encoded features are channels and the window's
    flows are the sequence.
    """
    per_value = 1 + bins
    if mode == "flow":
        return per_value, n_features
    if mode == "window":
        return n_features * per_value, window
    raise ConfigError(f"mode must be 'flow' or 'window', got {mode!r}")


def quantile_edges(matrix: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges per input column, ``(n_features, bins + 1)``: the training quantiles.

    Columns with few distinct values repeat edges; a zero-width bin becomes a
    step at its edge.

    >>> quantile_edges(np.arange(9.0).reshape(-1, 1), 4).tolist()
    [[0.0, 2.0, 4.0, 6.0, 8.0]]
    """
    return np.quantile(np.asarray(matrix, dtype="float64"), np.linspace(0.0, 1.0, bins + 1), axis=0).T.astype(
        "float32"
    )


class BinEncoding(nn.Module):
    """Piecewise-linear encoding of each input over its training quantiles.

    Maps every value ``x`` of input ``j`` to ``1 + bins`` channels: ``x``
    itself, then for each bin ``[lo, hi)`` of ``j`` the share of the bin
    below ``x``, clipped to [0, 1] (Gorishniy et al. 2022, "On Embeddings
    for Numerical Features in Tabular Deep Learning"). A network with it can
    cut an input at many values, as a tree does, instead of seeing one scalar.
    The edges are a buffer fitted on the training flows
    (:func:`quantile_edges`) and saved with the weights.

    Input ``(..., n_features)``; output ``(..., n_features, 1 + bins)``.
    """

    #: Smallest bin width: narrower bins act as a step at their lower edge.
    MIN_WIDTH = 1e-6

    def __init__(self, n_features: int, bins: int):
        super().__init__()
        self.register_buffer("edges", torch.zeros(n_features, bins + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lo = self.edges[:, :-1]
        width = torch.clamp(self.edges[:, 1:] - lo, min=self.MIN_WIDTH)
        share = torch.clamp((x.unsqueeze(-1) - lo) / width, 0.0, 1.0)
        return torch.cat([x.unsqueeze(-1), share], dim=-1)


def as_conv_input(x: torch.Tensor, mode: str, encoding: "BinEncoding | None" = None) -> torch.Tensor:
    """Model inputs as ``(batch, channels, length)`` for the convolutions (see :func:`sequence_shape`).

    Each value becomes its channels (itself, or its :class:`BinEncoding`);
    windowed inputs stack every flow's channels.

    >>> as_conv_input(torch.zeros(2, 5), "flow").shape, as_conv_input(torch.zeros(2, 3, 5), "window").shape
    (torch.Size([2, 1, 5]), torch.Size([2, 5, 3]))
    """
    x = encoding(x) if encoding is not None else x.unsqueeze(-1)  # (B, F, C) or (B, W, F, C)
    if mode == "window":
        x = x.flatten(2)  # (B, W, F*C)
    return x.transpose(1, 2)


class ConvBlock(nn.Module):
    """Convolution, batch norm, ReLU, max pooling, dropout."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(self.act(self.bn(self.conv(x)))))

    def forward_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """The same block on ``(batch, channels, 1, length)`` in channels-last memory, returned the same way.

        The same weights, statistics and results as :meth:`forward`, through
        oneDNN's channels-last kernels: with few channels (33 in, 32 out for
        the binned paper network) they take about two thirds of the CPU time
        of the ``(batch, channels, length)`` path (``docs/training-speed.md``).
        """
        conv, bn = self.conv, self.bn
        x = F.conv2d(x, conv.weight.unsqueeze(2), conv.bias, padding=(0, conv.padding[0]))
        factor = 0.0
        if bn.training and bn.track_running_stats:  # as BatchNorm1d.forward does
            bn.num_batches_tracked.add_(1)
            factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        use_batch = bn.training or bn.running_mean is None
        x = F.batch_norm(x, bn.running_mean if not bn.training or bn.track_running_stats else None,
                         bn.running_var if not bn.training or bn.track_running_stats else None,
                         bn.weight, bn.bias, use_batch, factor, bn.eps)
        x = F.relu(x)
        if isinstance(self.pool, nn.MaxPool1d):
            x = F.max_pool2d(x, (1, self.pool.kernel_size))
        if self.training and self.drop.p > 0:
            # the mask drawn in (batch, channels, length) order, as forward() draws it
            x = self.drop(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return x


def conv_stack(
    n_features: int,
    mode: str,
    window: int,
    conv_channels: Sequence[int],
    kernel_size: int,
    pool: int,
    dropout: float,
    bins: int = 0,
) -> tuple[list[ConvBlock], int, int]:
    """The convolution blocks every convolutional network here starts with.

    Returns the blocks and the (channels, length) of their output; a block
    pools only while the sequence is at least ``pool`` long.

    >>> blocks, channels, length = conv_stack(70, "flow", 8, (8, 16), 3, 6, 0.0)
    >>> len(blocks), channels, length
    (2, 16, 1)
    """
    channels, length = sequence_shape(n_features, mode, window, bins)
    blocks = []
    for out in conv_channels:
        p = pool if length >= pool else 1
        blocks.append(ConvBlock(channels, out, kernel_size, p, dropout))
        channels, length = out, length // p
    return blocks, channels, length


class CNNBiLSTMNet(nn.Module):
    """1-D convolutions for local patterns under a bidirectional LSTM for context.

    The final forward and backward hidden states of the last LSTM layer are
    concatenated and fed to a dense head.

    The defaults were chosen for inference speed on a 2-core CPU at no loss
    of accuracy on NF-BoT-IoT-v2: two narrow blocks that pool by 6 shorten
    the sequence the LSTM walks from ~70 inputs to 2 steps (6k parameters;
    over 100k flows/s through ONNX Runtime, see
    ``benchmarks/bench_inference.py``). Wider settings such as
    ``conv_channels=(32, 64), pool=4, lstm_hidden=32`` scored the same on
    the paper protocol at a quarter of the speed; ``configs/paper.toml``
    adds ``input_bins`` and width to reach the paper's 99%.

    Args:
        n_features: inputs per flow (after preprocessing).
        n_classes: outputs (2 for binary).
        mode: ``"flow"`` (the feature vector is the sequence) or ``"window"``
            (a window of consecutive flows is the sequence).
        window: flows per window in windowed mode.
        conv_channels: output channels of each convolution block.
        kernel_size: convolution width (odd keeps the length).
        pool: max-pool width per block; a block pools only while the
            sequence is at least ``pool`` long, so short windows survive.
        lstm_hidden: hidden units per direction.
        lstm_layers: stacked LSTM layers.
        dense: hidden units of the head.
        dropout: dropout after each block and in the head.
        input_bins: 0 feeds each input as one value; ``input_bins > 0`` feeds it
            through :class:`BinEncoding` with that many quantile bins, whose
            edges :meth:`fit_inputs` sets from the training inputs.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        mode: str = "flow",
        window: int = 8,
        conv_channels: Sequence[int] = (8, 16),
        kernel_size: int = 3,
        pool: int = 6,
        lstm_hidden: int = 16,
        lstm_layers: int = 1,
        dense: int = 32,
        dropout: float = 0.2,
        input_bins: int = 0,
    ):
        super().__init__()
        self.mode = mode
        self.encoding = BinEncoding(n_features, input_bins) if input_bins > 0 else None
        blocks, channels, self.seq_len = conv_stack(
            n_features, mode, window, conv_channels, kernel_size, pool, dropout, input_bins
        )
        self.features = nn.ModuleList(blocks)
        self.lstm = nn.LSTM(
            channels,
            lstm_hidden,
            num_layers=lstm_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if lstm_layers > 1 else 0.0,
        )
        self.hidden = nn.Linear(2 * lstm_hidden, dense)
        self.head_act = nn.ReLU()
        self.head_drop = nn.Dropout(dropout)
        self.out = nn.Linear(dense, n_classes)

    def fit_inputs(self, matrix: np.ndarray) -> None:
        """Fit what the network takes from the training inputs before training: the bin edges."""
        if self.encoding is not None:
            with torch.no_grad():
                self.encoding.edges.copy_(torch.from_numpy(quantile_edges(matrix, self.encoding.edges.shape[1] - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoding(x) if self.encoding is not None else x.unsqueeze(-1)  # (B, F, C) or (B, W, F, C)
        if self.mode == "window":
            x = x.flatten(2)  # (B, W, F*C)
        # (B, L, C) seen as (B, C, 1, L) in channels-last memory, no copy: see ConvBlock.forward_channels_last
        x = x.unsqueeze(1).permute(0, 3, 1, 2)
        for block in self.features:
            x = block.forward_channels_last(x)
        _, (h_n, _) = self.lstm(x.squeeze(2).transpose(1, 2))  # LSTM wants (B, L, C): contiguous here
        state = torch.cat([h_n[-2], h_n[-1]], dim=1)
        return self.out(self.head_drop(self.head_act(self.hidden(state))))
