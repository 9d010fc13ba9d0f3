"""The networks that intrusion-detection papers compare the CNN-BiLSTM against.

Each takes the same inputs as :class:`~flowsentinel.models.networks.CNNBiLSTMNet`:
a float32 batch ``(batch, n_features)`` in per-flow mode or
``(batch, window, n_features)`` in windowed mode, and returns class logits
``(batch, n_classes)``. Sizes are kept small enough to train on a 2-core CPU.

* :class:`DNNNet`: a plain feed-forward network (the window is flattened);
* :class:`CNNNet`: 1-D convolution blocks and global pooling;
* :class:`LSTMNet`: a unidirectional LSTM over the sequence;
* :class:`CNNLSTMNet`, :class:`CNNGRUNet`: convolution blocks under an LSTM / GRU;
* :class:`TCNNet`: a temporal convolutional network, residual blocks of
  dilated causal convolutions (Bai, Kolter, Koltun 2018).

The sequence is the feature vector in per-flow mode and the window's flows
(oldest first) in windowed mode (see :func:`~flowsentinel.models.networks.sequence_shape`).

>>> import torch
>>> for cls in (DNNNet, CNNNet, LSTMNet, CNNLSTMNet, CNNGRUNet, TCNNet):
...     flow = cls(n_features=20, n_classes=5).eval()
...     win = cls(n_features=20, n_classes=2, mode="window", window=8).eval()
...     assert flow(torch.zeros(3, 20)).shape == (3, 5)
...     assert win(torch.zeros(3, 8, 20)).shape == (3, 2)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .networks import as_conv_input, conv_stack, sequence_shape

__all__ = ["DNNNet", "CNNNet", "LSTMNet", "CNNLSTMNet", "CNNGRUNet", "TCNNet", "TemporalBlock"]


def _head(n_in: int, dense: int, n_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, dense), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dense, n_classes))


class DNNNet(nn.Module):
    """Fully connected layers (Linear, batch norm, ReLU, dropout) and a linear output.

    Args:
        hidden_layers: units of each hidden layer.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        mode: str = "flow",
        window: int = 8,
        hidden_layers: Sequence[int] = (128, 64),
        dropout: float = 0.2,
    ):
        super().__init__()
        sequence_shape(n_features, mode, window)  # validates mode
        self.mode = mode
        n_in = n_features if mode == "flow" else n_features * window
        layers: list[nn.Module] = []
        for units in hidden_layers:
            layers += [nn.Linear(n_in, units), nn.BatchNorm1d(units), nn.ReLU(), nn.Dropout(dropout)]
            n_in = units
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(n_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x.flatten(1)))


class CNNNet(nn.Module):
    """Convolution blocks, global average and max pooling, a dense head.

    Args:
        conv_channels: output channels of each :class:`~flowsentinel.models.networks.ConvBlock`.
        kernel_size, pool: per block; a block pools only while the sequence
            is at least ``pool`` long.
        dense: hidden units of the head.
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
        dense: int = 64,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.mode = mode
        blocks, channels, _ = conv_stack(n_features, mode, window, conv_channels, kernel_size, pool, dropout)
        self.features = nn.Sequential(*blocks)
        self.head = _head(2 * channels, dense, n_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(as_conv_input(x, self.mode))
        return self.head(torch.cat([z.mean(dim=2), z.amax(dim=2)], dim=1))


class LSTMNet(nn.Module):
    """A unidirectional LSTM over the sequence; the last hidden state feeds the head.

    In per-flow mode the feature vector is read as a sequence of one-value
    steps, as the IDS papers that apply an LSTM to single flows do.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        mode: str = "flow",
        window: int = 8,
        hidden: int = 32,
        layers: int = 1,
        dense: int = 64,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.mode = mode
        channels, _ = sequence_shape(n_features, mode, window)
        self.rnn = nn.LSTM(channels, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.head = _head(hidden, dense, n_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.unsqueeze(2) if self.mode == "flow" else x  # (B, L, C)
        _, (h_n, _) = self.rnn(seq)
        return self.head(h_n[-1])


class _ConvRecurrentNet(nn.Module):
    """Convolution blocks (local patterns, shorter sequence) under a recurrent layer."""

    cell: type[nn.Module] = nn.LSTM

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        mode: str = "flow",
        window: int = 8,
        conv_channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        pool: int = 4,
        hidden: int = 32,
        dense: int = 64,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.mode = mode
        blocks, channels, _ = conv_stack(n_features, mode, window, conv_channels, kernel_size, pool, dropout)
        self.features = nn.Sequential(*blocks)
        self.rnn = self.cell(channels, hidden, batch_first=True)
        self.head = _head(hidden, dense, n_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.features(as_conv_input(x, self.mode)).transpose(1, 2)  # (B, L, C)
        _, state = self.rnn(z)
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(h_n[-1])


class CNNLSTMNet(_ConvRecurrentNet):
    """Convolution blocks, then a unidirectional LSTM (the CNN-BiLSTM minus the backward pass)."""

    cell = nn.LSTM


class CNNGRUNet(_ConvRecurrentNet):
    """Convolution blocks, then a GRU."""

    cell = nn.GRU


class TemporalBlock(nn.Module):
    """Two dilated causal convolutions with ReLU and dropout, plus a residual path.

    Causal: the input is padded on the left only, by ``(kernel_size - 1) *
    dilation``, so output step ``t`` sees input steps ``<= t``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.left_pad = (kernel_size - 1) * dilation
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size, dilation=dilation)
        self.drop = nn.Dropout(dropout)
        self.act = nn.ReLU()
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def _causal(self, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        return conv(nn.functional.pad(x, (self.left_pad, 0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.drop(self.act(self._causal(self.conv1, x)))
        y = self.drop(self.act(self._causal(self.conv2, y)))
        return self.act(y + self.downsample(x))


class TCNNet(nn.Module):
    """A temporal convolutional network: block ``i`` has dilation ``2**i``.

    The head reads the last step of the final block together with the mean
    over all steps: with the default three blocks the receptive field is 29
    steps, the whole of a window but not of a ~70-value feature vector.
    :meth:`temporal` gives every step's features.

    Args:
        channels: output channels of each :class:`TemporalBlock`.
        kernel_size: width of each causal convolution.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        mode: str = "flow",
        window: int = 8,
        channels: Sequence[int] = (32, 32, 32),
        kernel_size: int = 3,
        dense: int = 64,
        dropout: float = 0.2,
    ):
        super().__init__()
        self.mode = mode
        in_channels, _ = sequence_shape(n_features, mode, window)
        blocks = []
        for i, out in enumerate(channels):
            blocks.append(TemporalBlock(in_channels, out, kernel_size, 2**i, dropout))
            in_channels = out
        self.blocks = nn.Sequential(*blocks)
        self.head = _head(2 * in_channels, dense, n_classes, dropout)

    def temporal(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step features ``(batch, channels, length)``; step ``t`` depends on inputs ``<= t`` only."""
        return self.blocks(as_conv_input(x, self.mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.temporal(x)
        return self.head(torch.cat([z[:, :, -1], z.mean(dim=2)], dim=1))
