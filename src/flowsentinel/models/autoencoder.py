"""A dense autoencoder scored by reconstruction error, as Kitsune does.

It learns benign flows only (:class:`~flowsentinel.models.unsupervised.UnsupervisedDetector`)
and trains with the project's one loop (:class:`~flowsentinel.models.loop.Trainer`),
given the inputs as targets and a mean-squared-error loss.

>>> from flowsentinel.synthetic import generate_flows
>>> det = AutoencoderDetector(hidden_layers=(16, 4), max_epochs=2, verbose=False).fit(
...     generate_flows(1500, random_state=0, balance=0.3))
>>> det.threshold_, det.raw_threshold_ > 0
(0.5, True)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataError
from ..features import FeatureConfig
from .base import DetectorState
from .inputs import ArraySource
from .loop import BestCheckpoint, EarlyStopping, ProgressBar, Trainer, predict_logits
from .params import number_in, positive_int, positive_ints
from .unsupervised import UnsupervisedDetector

__all__ = ["AutoencoderDetector", "AutoencoderNet"]


class AutoencoderNet(nn.Module):
    """A dense autoencoder: encoder ``hidden_layers``, mirrored decoder, linear output.

    >>> net = AutoencoderNet(20, hidden_layers=(16, 4)).eval()
    >>> net(torch.zeros(3, 20)).shape
    torch.Size([3, 20])
    """

    def __init__(self, n_features: int, hidden_layers: Sequence[int] = (32, 8), dropout: float = 0.0):
        super().__init__()
        sizes = [n_features, *hidden_layers]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.encoder = nn.Sequential(*layers)
        back = sizes[::-1]
        layers = []
        for a, b in zip(back[:-2], back[1:-1]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(back[-2], back[-1]))
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _reconstruction_metrics(target: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
    # The loop's early stopping and checkpoint maximise: watch the negated error.
    return {"neg_mse": -float(np.mean((reconstruction - target) ** 2))}


class AutoencoderDetector(UnsupervisedDetector):
    """Reconstruction error of a dense autoencoder trained on benign flows.

    The raw score is the mean squared error between a flow's (standardised)
    features and their reconstruction. Training goes through the shared
    :class:`~flowsentinel.models.loop.Trainer` unchanged: the targets are
    the inputs, the loss is ``nn.MSELoss``, and early stopping and the best
    checkpoint watch the validation error.

    Args:
        hidden_layers: encoder widths (the decoder mirrors them).
        dropout: after each hidden layer.
        batch_size, max_epochs, patience, lr, weight_decay: training.
        target_far, val_fraction, threshold, random_state: as for :class:`PCADetector`.
        num_threads: torch CPU threads (``None`` leaves torch's default).
        verbose: progress bars and per-epoch log lines.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (32, 8),
        dropout: float = 0.0,
        batch_size: int = 256,
        max_epochs: int = 30,
        patience: int = 5,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        target_far: float = 0.01,
        val_fraction: float = 0.2,
        threshold: float | None = None,
        feature_config: FeatureConfig | None = None,
        random_state: int = 0,
        num_threads: int | None = None,
        verbose: bool = True,
    ):
        self.hidden_layers = hidden_layers
        self.dropout = dropout
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.lr = lr
        self.weight_decay = weight_decay
        self.target_far = target_far
        self.val_fraction = val_fraction
        self.threshold = threshold
        self.feature_config = feature_config
        self.random_state = random_state
        self.num_threads = num_threads
        self.verbose = verbose

    def _check_params(self) -> None:
        positive_ints("hidden_layers", self.hidden_layers)
        number_in("dropout", self.dropout, 0.0, 1.0, high_open=True)
        positive_int("batch_size", self.batch_size, 2)
        positive_int("max_epochs", self.max_epochs)
        positive_int("patience", self.patience)
        number_in("lr", self.lr, 0.0, 10.0, low_open=True)

    def _build(self, n_inputs: int) -> nn.Module:
        return AutoencoderNet(n_inputs, [int(h) for h in self.hidden_layers], float(self.dropout))

    def _fit_matrix(self, train: np.ndarray, val: np.ndarray) -> None:
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        torch.manual_seed(self.random_state)
        self.module_ = self._build(train.shape[1])
        optimizer = torch.optim.AdamW(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        trainer = Trainer(
            self.module_,
            nn.MSELoss(),
            optimizer,
            _reconstruction_metrics,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            callbacks=[EarlyStopping("neg_mse", self.patience), BestCheckpoint("neg_mse"), ProgressBar(self.verbose)],
            seed=self.random_state,
        )
        train = np.ascontiguousarray(train, dtype=np.float32)
        val = np.ascontiguousarray(val, dtype=np.float32)
        trainer.fit(ArraySource(train), train, ArraySource(val), val)
        self.module_.eval()
        self.history_ = [
            {"epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss, "seconds": r.seconds,
             "flows_per_s": r.flows_per_s}
            for r in trainer.history
        ]
        self.best_epoch_ = trainer.best_epoch

    def _raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        recon = predict_logits(self.module_, ArraySource(matrix))
        return ((recon.astype("float64") - matrix) ** 2).mean(axis=1)

    # ---- state (no pickle) -------------------------------------------------
    def _get_state(self) -> DetectorState:
        arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in self.module_.state_dict().items()}
        return DetectorState(arrays, {"n_inputs": int(self.module_.encoder[0].in_features),
                                      "raw_threshold": self.raw_threshold_,
                                      "training": {"history": self.history_, "best_epoch": self.best_epoch_}})

    def _set_state(self, state: DetectorState) -> None:
        module = self._build(int(state.fields["n_inputs"]))
        try:
            module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.arrays.items()})
        except RuntimeError as exc:
            raise DataError(f"weights do not fit the autoencoder: {str(exc).splitlines()[0]}") from None
        self.module_ = module.eval()
        self.raw_threshold_ = float(state.fields["raw_threshold"])
        training = state.fields.get("training") or {}
        self.history_, self.best_epoch_ = training.get("history", []), training.get("best_epoch")
