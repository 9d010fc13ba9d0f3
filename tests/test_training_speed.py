"""The faster training paths (channels-last blocks, torch.compile) take the same steps as the plain ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from flowsentinel.models.deep import validation_metrics
from flowsentinel.models.inputs import ArraySource
from flowsentinel.models.loop import Trainer
from flowsentinel.models.networks import CNNBiLSTMNet


def _trained(compile: bool, X: np.ndarray, y: np.ndarray) -> tuple[nn.Module, Trainer]:
    torch.manual_seed(0)
    net = CNNBiLSTMNet(X.shape[1], 3, conv_channels=(4, 8), pool=2, lstm_hidden=4, dense=8, dropout=0.0,
                       input_bins=4)
    net.fit_inputs(X)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    # 300 rows at batch 64: four compiled batches and an odd last one of 44 that runs eagerly
    trainer = Trainer(net, nn.CrossEntropyLoss(), optimizer, validation_metrics, batch_size=64, max_epochs=2,
                      seed=0, compile=compile)
    trainer.fit(ArraySource(X), y, ArraySource(X[:50]), y[:50])
    return net, trainer


def test_compiled_training_ends_at_the_weights_of_eager_training():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1).astype(np.int64)
    eager, eager_run = _trained(False, X, y)
    compiled, compiled_run = _trained(True, X, y)
    assert compiled_run.compiled is not None  # it really went through torch.compile
    # A convolution's bias under batch norm gets a gradient of zero up to rounding, which AdamW scales up
    # to full steps: it (and the running mean that follows it) drifts the same way from any change of
    # summation order, and batch norm takes it out again. Every other weight must agree.
    drifting = ("conv.bias", "bn.running_mean")
    for name, value in eager.state_dict().items():
        if not name.endswith(drifting):
            torch.testing.assert_close(compiled.state_dict()[name], value, atol=1e-5, rtol=1e-4, msg=name)
    np.testing.assert_allclose([r.train_loss for r in compiled_run.history],
                               [r.train_loss for r in eager_run.history], rtol=1e-4)
    # the checkpoint and the saved state are the plain module's: no compiled-wrapper names
    assert not any(k.startswith("_orig_mod") for k in compiled.state_dict())


def test_torch_compile_is_a_training_setting_not_saved_with_the_model():
    from flowsentinel.models.deep import cnn_bilstm

    det = cnn_bilstm(torch_compile=True)
    assert det.get_params()["torch_compile"] is True
    assert "torch_compile" not in det.saved_params()


def _reference_forward(net: CNNBiLSTMNet, x: torch.Tensor) -> torch.Tensor:
    """The CNN-BiLSTM's forward pass in the (batch, channels, length) layout it had before channels-last."""
    from flowsentinel.models.networks import as_conv_input

    h = as_conv_input(x, net.mode, net.encoding)
    for block in net.features:
        h = block(h)
    _, (h_n, _) = net.lstm(h.transpose(1, 2))
    return net.out(net.head_drop(net.head_act(net.hidden(torch.cat([h_n[-2], h_n[-1]], dim=1)))))


@pytest.mark.parametrize("mode,shape,bins,dropout", [("flow", (64, 20), 4, 0.0), ("flow", (64, 20), 0, 0.3),
                                                     ("window", (64, 6, 10), 3, 0.3)])
def test_channels_last_forward_is_the_layout_it_replaced(mode, shape, bins, dropout):
    torch.manual_seed(0)
    net = CNNBiLSTMNet(shape[-1], 3, mode=mode, window=shape[1] if mode == "window" else 8, conv_channels=(6, 8),
                       pool=2, lstm_hidden=5, dense=7, dropout=dropout, input_bins=bins)
    x = torch.randn(*shape)
    net.fit_inputs(x.reshape(-1, shape[-1]).numpy())
    twin = CNNBiLSTMNet(shape[-1], 3, mode=mode, window=shape[1] if mode == "window" else 8, conv_channels=(6, 8),
                        pool=2, lstm_hidden=5, dense=7, dropout=dropout, input_bins=bins)
    twin.load_state_dict(net.state_dict())
    for training in (True, False):
        net.train(training)
        twin.train(training)
        torch.manual_seed(1)  # the same dropout masks
        got = net(x)
        torch.manual_seed(1)
        want = _reference_forward(twin, x)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        if training:
            got.square().sum().backward()
            want.square().sum().backward()
    for (name, a), b in zip(net.named_parameters(), twin.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)
    for name, value in net.state_dict().items():  # running statistics and batch counts alike
        torch.testing.assert_close(value, twin.state_dict()[name], msg=name)
