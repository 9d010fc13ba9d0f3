"""The one training loop that every deep model in flowsentinel uses.

Small named steps (:meth:`Trainer.train_step`, :meth:`Trainer.validation_step`)
and callbacks (early stopping, best checkpoint, progress bar, history) instead
of flags threaded through the loop.

Several processes train with the same loop (PyTorch DistributedDataParallel):
given a ``distributed`` context (:class:`flowsentinel.training.distributed.DistributedContext`)
the Trainer asks it for three things only: the module that averages gradients
across processes (:meth:`wrap`), the rows of this process's shard an epoch
visits (:meth:`epoch_order`, the same number in every process) and every
process's validation predictions (:meth:`gather_validation`), so that each
process takes the same early-stopping and checkpoint decisions.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .inputs import BatchSource

__all__ = [
    "EpochRecord",
    "Callback",
    "EarlyStopping",
    "BestCheckpoint",
    "ProgressBar",
    "Trainer",
    "predict_logits",
]

log = logging.getLogger(__name__)


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_metrics: dict[str, float]
    seconds: float
    flows_per_s: float


class Callback:
    def on_train_begin(self, trainer: "Trainer") -> None:
        pass

    def on_batch_end(self, trainer: "Trainer", n_rows: int, loss: float) -> None:
        pass

    def on_epoch_begin(self, trainer: "Trainer", epoch: int) -> None:
        pass

    def on_epoch_end(self, trainer: "Trainer", record: EpochRecord) -> None:
        pass

    def on_train_end(self, trainer: "Trainer") -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor: str = "f1_macro", patience: int = 5, min_delta: float = 1e-4):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta

    def on_train_begin(self, trainer):
        self.best, self.wait = -np.inf, 0

    def on_epoch_end(self, trainer, record):
        value = record.val_metrics.get(self.monitor, -np.inf)
        if value > self.best + self.min_delta:
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                log.info("early stopping at epoch %d: %s has not improved for %d epochs", record.epoch, self.monitor, self.patience)
                trainer.stop = True


class BestCheckpoint(Callback):
    """Keep the weights of the best epoch by ``monitor`` and restore them at the end.

    Ties go to the lower validation loss.
    """

    def __init__(self, monitor: str = "f1_macro"):
        self.monitor = monitor

    def on_train_begin(self, trainer):
        self.best_key, self.state, self.best_epoch = None, None, None

    def on_epoch_end(self, trainer, record):
        key = (record.val_metrics.get(self.monitor, -np.inf), -record.val_loss)
        if self.best_key is None or key > self.best_key:
            self.best_key, self.best_epoch = key, record.epoch
            self.state = copy.deepcopy(trainer.module.state_dict())

    def on_train_end(self, trainer):
        if self.state is not None:
            trainer.module.load_state_dict(self.state)
            trainer.best_epoch = self.best_epoch


class ProgressBar(Callback):
    """A tqdm bar per epoch, with flows/s and the running loss."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def on_epoch_begin(self, trainer, epoch):
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        # disable=None: a bar on a terminal, the per-epoch log line only when output goes to a file
        self.bar = tqdm(total=trainer.n_train, unit="flow", unit_scale=True, desc=f"epoch {epoch}", leave=False,
                        disable=None)

    def on_batch_end(self, trainer, n_rows, loss):
        if self.bar is not None:
            self.bar.update(n_rows)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def on_epoch_end(self, trainer, record):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        metric = ", ".join(f"{k}={v:.4f}" for k, v in record.val_metrics.items())
        log.info(
            "epoch %d: loss %.4f, val loss %.4f, %s, %.0f flows/s",
            record.epoch, record.train_loss, record.val_loss, metric, record.flows_per_s,
        )


@torch.inference_mode()
def predict_logits(module: nn.Module, source: BatchSource, batch_size: int = 4096) -> np.ndarray:
    module.eval()
    outs = []
    for start in range(0, len(source), batch_size):
        index = np.arange(start, min(start + batch_size, len(source)))
        outs.append(module(torch.from_numpy(source.take(index))).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


class Trainer:
    """Mini-batch training with AdamW and a (class-weighted) loss.

    Args:
        module: the network.
        loss_fn: e.g. ``nn.CrossEntropyLoss(weight=...)``.
        optimizer: built by the caller over ``module.parameters()``.
        metric_fn: ``(y_true, logits) -> dict`` of validation metrics.
        batch_size, max_epochs: as named.
        callbacks: run in order at each hook.
        seed: shuffling seed (batches are drawn from a seeded generator).
        distributed: the context of one process of several (see the module
            docstring); ``None`` in a single process.
    """

    def __init__(
        self,
        module: nn.Module,
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        metric_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]],
        *,
        batch_size: int = 512,
        max_epochs: int = 20,
        callbacks: Sequence[Callback] = (),
        seed: int = 0,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        distributed=None,
        compile: bool = False,
    ):
        self.module = module
        self.distributed = distributed
        # The module training steps run through: under DDP its backward pass all-reduces the gradients.
        self.train_module = module if distributed is None else distributed.wrap(module)
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.metric_fn = metric_fn
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.callbacks = list(callbacks)
        self.rng = np.random.default_rng(seed)
        self.scheduler = scheduler
        self.history: list[EpochRecord] = []
        self.stop = False
        self.best_epoch: int | None = None
        self.n_train = 0
        # Full batches run through a compiled forward (fused elementwise work, see docs/training-speed.md);
        # the odd last batch runs eagerly, so one graph of one shape serves the whole fit.
        self.compiled = torch.compile(module, dynamic=False) if compile and distributed is None else None

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def forward(self, xb: torch.Tensor) -> torch.Tensor:
        """The training forward pass: compiled for full batches where asked, eager otherwise."""
        if self.compiled is not None and len(xb) == self.batch_size:
            try:
                return self.compiled(xb)
            except Exception as exc:  # no C++ compiler, an operator inductor lacks: the eager loop is the same math
                log.warning("torch.compile failed (%s: %s); training goes on without it", type(exc).__name__, exc)
                self.compiled = None
        return self.train_module(xb)

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> float:
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.forward(xb), yb)
        loss.backward()
        nn.utils.clip_grad_norm_(self.module.parameters(), 5.0)
        self.optimizer.step()
        return float(loss.detach())

    def validation_step(self, source: BatchSource, y: np.ndarray) -> tuple[float, dict[str, float]]:
        logits = predict_logits(self.module, source)
        if self.distributed is not None:
            y, logits = self.distributed.gather_validation(y, logits)
        with torch.no_grad():
            loss = float(self.loss_fn(torch.from_numpy(logits), torch.from_numpy(y)))
        return loss, self.metric_fn(y, logits)

    def train_epoch(self, source: BatchSource, y: np.ndarray, epoch: int) -> tuple[float, float]:
        order = self.rng.permutation(len(source)) if self.distributed is None else \
            self.distributed.epoch_order(len(source), self.rng)
        total, n_seen = 0.0, 0
        start = time.perf_counter()
        for begin in range(0, len(order), self.batch_size):
            index = order[begin : begin + self.batch_size]
            if len(index) < 2:  # batch norm needs two rows
                continue
            xb = torch.from_numpy(source.take(index))
            yb = torch.from_numpy(y[index])
            loss = self.train_step(xb, yb)
            total += loss * len(index)
            n_seen += len(index)
            self._call("on_batch_end", len(index), loss)
        seconds = time.perf_counter() - start
        return total / max(n_seen, 1), n_seen / max(seconds, 1e-9)

    def fit(self, train: BatchSource, y_train: np.ndarray, val: BatchSource, y_val: np.ndarray) -> "Trainer":
        self.n_train = len(train)
        self._call("on_train_begin")
        for epoch in range(1, self.max_epochs + 1):
            self._call("on_epoch_begin", epoch)
            t0 = time.perf_counter()
            train_loss, speed = self.train_epoch(train, y_train, epoch)
            val_loss, metrics = self.validation_step(val, y_val)
            if self.scheduler is not None:
                self.scheduler.step()
            record = EpochRecord(epoch, train_loss, val_loss, metrics, time.perf_counter() - t0, speed)
            self.history.append(record)
            self._call("on_epoch_end", record)
            if self.stop:
                break
        self._call("on_train_end")
        return self
