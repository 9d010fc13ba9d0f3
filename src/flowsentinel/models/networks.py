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

import torch
from torch import nn

__all__ = ["ConvBlock", "CNNBiLSTMNet", "conv_stack", "sequence_shape"]


def sequence_shape(n_features: int, mode: str, window: int) -> tuple[int, int]:
    """(channels, length) that the convolutions see.

    Per-flow: the feature vector is a one-channel sequence. Windowed: each
    flow's features are channels and the window's flows are the sequence.
    """
    if mode == "flow":
        return 1, n_features
    if mode == "window":
        return n_features, window
    raise ValueError(f"mode must be 'flow' or 'window', got {mode!r}")


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


def conv_stack(
    n_features: int, mode: str, window: int, conv_channels: Sequence[int], kernel_size: int, pool: int, dropout: float
) -> tuple[list[ConvBlock], int, int]:
    """The convolution blocks every convolutional network here starts with.

    Returns the blocks and the (channels, length) of their output; a block
    pools only while the sequence is at least ``pool`` long.

    >>> blocks, channels, length = conv_stack(70, "flow", 8, (8, 16), 3, 6, 0.0)
    >>> len(blocks), channels, length
    (2, 16, 1)
    """
    channels, length = sequence_shape(n_features, mode, window)
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
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        mode: str = "flow",
        window: int = 8,
        conv_channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        lstm_hidden: int = 64,
        lstm_layers: int = 1,
        dense: int = 64,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.mode = mode
        blocks, channels, self.seq_len = conv_stack(n_features, mode, window, conv_channels, kernel_size, pool, dropout)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "flow":
            x = x.unsqueeze(1)  # (B, 1, F)
        else:
            x = x.transpose(1, 2)  # (B, F, W)
        for block in self.features:
            x = block(x)
        _, (h_n, _) = self.lstm(x.transpose(1, 2))  # LSTM wants (B, L, C)
        state = torch.cat([h_n[-2], h_n[-1]], dim=1)
        return self.out(self.head_drop(self.head_act(self.hidden(state))))
