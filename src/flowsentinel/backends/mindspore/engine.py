"""MindSpore's part of the engine seam: weights in and out, compiled steps, the trainer,
the training backend and the inference engine of a :class:`~flowsentinel.models.deep.DeepDetector`.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from ...errors import ConfigError, DataError
from ...models.inputs import BatchSource
from ...models.loop import Trainer
from .cells import mindspore_module, network_classes
from .layout import mindspore_layout_to_torch, torch_layout_to_mindspore

__all__ = [
    "MindSporeBackend",
    "MindSporeEngine",
    "MindSporeTrainer",
    "canonical_state",
    "load_canonical_state",
    "copy_into",
    "make_forward",
    "make_train_step",
    "predict_logits",
    "CLIP_NORM",
]

log = logging.getLogger(__name__)

#: The gradient-norm clip of the shared training step (as in ``Trainer.train_step``).
CLIP_NORM = 5.0


# ---- weights in and out of a cell --------------------------------------------------------------


def canonical_state(net) -> dict[str, np.ndarray]:
    """A MindSpore network's weights in the canonical (PyTorch) layout, as numpy copies."""
    return mindspore_layout_to_torch({name: p.asnumpy().copy() for name, p in net.parameters_dict().items()})


def load_canonical_state(net, state: dict[str, np.ndarray]) -> None:
    """Set a MindSpore network's weights from a canonical (PyTorch) layout state; exact.

    Raises :class:`~flowsentinel.errors.DataError` naming what is missing, unexpected or misshapen.
    """
    ms_state = torch_layout_to_mindspore(state)
    params = net.parameters_dict()
    missing = sorted(set(params) - set(ms_state))
    unexpected = sorted(set(ms_state) - set(params))
    wrong = [f"{k} {ms_state[k].shape} vs {tuple(params[k].shape)}" for k in sorted(set(params) & set(ms_state))
             if tuple(ms_state[k].shape) != tuple(params[k].shape)]
    if missing or unexpected or wrong:
        raise DataError(f"weights do not fit the architecture (missing {missing}, unexpected {unexpected}, shapes {wrong})")
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

    from ...models.networks import CNNBiLSTMNet

    torch.manual_seed(seed)
    net = CNNBiLSTMNet(n_inputs, n_classes, **kwargs)
    return {k: v.detach().numpy().copy() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


# ---- compiled steps ----------------------------------------------------------------------------


def make_forward(net) -> Callable:
    """The network's forward pass compiled in graph (jit) mode; call with the net in eval mode."""
    ms = mindspore_module()

    @ms.jit
    def forward(x):
        return net(x)

    return forward


def make_train_step(net, optimizer, weights: np.ndarray | None, clip_norm: float = CLIP_NORM) -> Callable:
    """One compiled training step: weighted cross-entropy, gradient clipping, optimizer update."""
    ms = mindspore_module()
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
    """The shared :class:`~flowsentinel.models.loop.Trainer` with MindSpore's step and forward.

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


# ---- the training backend and the inference engine ---------------------------------------------


class MindSporeEngine:
    """The compiled forward pass of a MindSpore network, with a softmax on its logits."""

    name = "mindspore"

    def __init__(self, net):
        self.net = net
        self.forward = make_forward(net)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        from mindspore import Tensor

        self.net.set_train(False)
        size = _bucket(len(batch), 4096)
        xb = np.ascontiguousarray(batch, np.float32)
        if size > len(xb):
            xb = np.concatenate([xb, np.zeros((size - len(xb),) + xb.shape[1:], np.float32)])
        return self.forward(Tensor(xb)).asnumpy()[: len(batch)]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        logits = self.logits(batch)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)


class MindSporeBackend:
    """Builds and trains a :class:`~flowsentinel.models.deep.DeepDetector`'s network in MindSpore.

    Only the CNN-BiLSTM has MindSpore cells. The network starts from PyTorch's
    initial weights for the same ``random_state``, so both backends start
    from the same network; training runs the shared loop with MindSpore's
    compiled step. ``conv_impl`` and ``lstm_impl`` pick the cells'
    implementations (see ``MindSporeCNNBiLSTMNet``).
    """

    name = "mindspore"
    conv_impl = "matmul"
    lstm_impl = "unrolled"

    def check(self, det) -> None:
        """Refuse a detector whose network this backend cannot run."""
        if det.network != "cnn-bilstm":
            raise ConfigError(f"the MindSpore backend has the cnn-bilstm network only, not {det.network!r}; "
                              "use backend torch for it")

    def seed(self, det) -> None:
        self.check(det)
        ms = mindspore_module(det.num_threads)
        import torch

        if det.num_threads:
            torch.set_num_threads(int(det.num_threads))
        ms.set_seed(det.random_state)

    def build(self, det, n_inputs: int, n_classes: int):
        """The MindSpore network, initialised with PyTorch's initial weights for ``random_state``."""
        self.check(det)
        mindspore_module(det.num_threads)
        kwargs = det.network_kwargs()
        net = network_classes().MindSporeCNNBiLSTMNet(n_inputs, n_classes, conv=self.conv_impl, lstm=self.lstm_impl,
                                                      **kwargs)
        load_canonical_state(net, _torch_initial_state(n_inputs, n_classes, kwargs, det.random_state))
        net.set_train(False)
        return net

    def fit_inputs(self, net, matrix: np.ndarray) -> None:
        if net.encoding is not None:
            from ...models.networks import quantile_edges

            copy_into(net.encoding.edges, quantile_edges(matrix, net.encoding.edges.shape[1] - 1))

    def trainer(self, det, net, weights: np.ndarray | None) -> "MindSporeTrainer":
        import torch
        from mindspore.experimental.optim import AdamW

        from ...models.deep import validation_metrics

        optimizer = AdamW(net.trainable_params(), lr=det.lr, weight_decay=det.weight_decay)
        val_loss = torch.nn.CrossEntropyLoss(weight=None if weights is None else torch.tensor(weights, dtype=torch.float32))
        return MindSporeTrainer(
            net,
            make_train_step(net, optimizer, weights),
            make_forward(net),
            val_loss,
            validation_metrics,
            batch_size=det.batch_size,
            max_epochs=det.max_epochs,
            callbacks=det.training_callbacks(),
            seed=det.random_state,
            scheduler=_EpochCosine(optimizer, max(det.max_epochs, 1)),
        )

    def state(self, net) -> dict[str, np.ndarray]:
        return canonical_state(net)

    def load(self, net, arrays: dict[str, np.ndarray]) -> None:
        load_canonical_state(net, arrays)
        net.set_train(False)

    def engine(self, net, config) -> MindSporeEngine:
        return MindSporeEngine(net)
