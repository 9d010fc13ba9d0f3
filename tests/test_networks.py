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


# ---- the binned input encoding ----------------------------------------------------------------


def test_quantile_edges_are_training_quantiles_per_column():
    import numpy as np

    from flowsentinel.models.networks import quantile_edges

    matrix = np.column_stack([np.arange(101.0), np.zeros(101)])
    edges = quantile_edges(matrix, 4)
    assert edges.shape == (2, 5) and edges.dtype == np.float32
    assert edges[0].tolist() == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert edges[1].tolist() == [0.0] * 5  # a constant column: every bin has zero width


def test_bin_encoding_is_the_value_then_its_share_of_each_bin():
    from flowsentinel.models.networks import BinEncoding

    enc = BinEncoding(2, 3)
    with torch.no_grad():
        enc.edges.copy_(torch.tensor([[0.0, 1.0, 2.0, 4.0], [5.0, 5.0, 5.0, 5.0]]))
    x = torch.tensor([[1.5, 4.0], [-1.0, 5.0], [9.0, 6.0]])
    out = enc(x)
    assert out.shape == (3, 2, 4)
    assert out[0, 0].tolist() == [1.5, 1.0, 0.5, 0.0]  # value, full first bin, half the second, none of the third
    assert out[1, 0].tolist() == [-1.0, 0.0, 0.0, 0.0]  # below the training range
    assert out[2, 0].tolist() == [9.0, 1.0, 1.0, 1.0]  # above it
    assert out[0, 1, 1:].tolist() == [0.0, 0.0, 0.0]  # zero-width bins are steps at their edge ...
    assert out[2, 1, 1:].tolist() == [1.0, 1.0, 1.0]  # ... that a larger value has passed
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("mode,shape", [("flow", (5, 30)), ("window", (5, 4, 30))])
def test_binned_network_shapes_and_channels(mode, shape):
    net = CNNBiLSTMNet(30, 3, mode=mode, window=4, conv_channels=(8,), pool=2, input_bins=6).eval()
    first = net.features[0].conv
    assert first.in_channels == (7 if mode == "flow" else 30 * 7)
    assert net(torch.randn(*shape)).shape == (5, 3)
    assert "encoding.edges" in net.state_dict()  # saved with the weights


def test_detector_fits_the_bin_edges_on_its_training_flows(synthetic):
    import numpy as np

    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.models.networks import quantile_edges

    flows = synthetic.iloc[:1500].reset_index(drop=True)
    det = cnn_bilstm(input_bins=8, max_epochs=1, val_fraction=0.2, verbose=False).fit(flows)
    edges = det.network_module.encoding.edges.numpy()
    assert edges.shape == (len(det.features_.output_names_), 9)
    assert np.all(np.diff(edges, axis=1) >= 0)
    # fitted on the transformed training rows: inside their range, not the validation rows'
    train_rows = det.features_.transform(flows)
    assert np.all(edges[:, 0] >= train_rows.min(axis=0) - 1e-6) and np.all(edges[:, -1] <= train_rows.max(axis=0) + 1e-6)
    assert not np.allclose(edges, 0.0)
    assert quantile_edges(train_rows, 8).shape == edges.shape


def test_monitor_must_be_a_validation_metric(synthetic):
    from flowsentinel.models.deep import cnn_bilstm

    with pytest.raises(ValueError, match="monitor must be one of"):
        cnn_bilstm(monitor="recall", max_epochs=1, verbose=False).fit(synthetic.iloc[:500])
