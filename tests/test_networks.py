"""Shapes and structure of the CNN-BiLSTM network."""

from __future__ import annotations

import pytest
import torch

from flowsentinel.models.networks import CNNBiLSTMNet


@pytest.mark.parametrize("mode,shape", [("flow", (5, 61)), ("window", (5, 8, 61))])
@pytest.mark.parametrize("channels,pool", [((32, 64), 4), ((16,), 2), ((8, 8, 8), 2)])
def test_output_shape(mode, shape, channels, pool):
    net = CNNBiLSTMNet(61, 5, mode=mode, window=8, conv_channels=channels, pool=pool).eval()
    assert net(torch.randn(*shape)).shape == (5, 5)


def test_pooling_stops_before_a_short_window_vanishes():
    net = CNNBiLSTMNet(40, 2, mode="window", window=4, conv_channels=(8, 8, 8), pool=2)
    assert net.seq_len == 1  # 4 -> 2 -> 1 -> (no pool) 1
    assert net(torch.randn(3, 4, 40)).shape == (3, 2)


def test_head_sees_both_directions_final_states():
    net = CNNBiLSTMNet(20, 3, lstm_hidden=16, dense=8)
    assert net.lstm.bidirectional and net.hidden.in_features == 32


def test_batchnorm_and_dropout_inactive_in_eval():
    net = CNNBiLSTMNet(20, 3).eval()
    x = torch.randn(4, 20)
    assert torch.equal(net(x), net(x))
    assert torch.allclose(net(x[:1]), net(x)[:1], atol=1e-6)
