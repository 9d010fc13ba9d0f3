"""The one deep estimator: a named network trained with the shared loop, scored by an engine.

:class:`DeepDetector` takes the network by name (``network="cnn-bilstm"``,
``"dnn"``, ``"cnn"``, ``"lstm"``, ``"cnn-lstm"``, ``"cnn-gru"``, ``"tcn"``:
see :mod:`flowsentinel.models.presets`) and its settings as
``network_params`` (defaults: the network class's own). Everything else is
shared by every network: labels, class weights, windowing, the training loop
(:class:`~flowsentinel.models.loop.Trainer`) with its callbacks, the threshold
policy, the saved state.

Two strategies are chosen inside the detector, never by wrapping it:

* the **backend** that builds and trains the network (``backend="torch"``, or
  ``"mindspore"`` where installed: :mod:`flowsentinel.backends.mindspore`);
* the **engine** that runs the forward pass when scoring
  (:meth:`DeepDetector.use_engine`: the training backend's own network, or
  ONNX Runtime; see :mod:`flowsentinel.models.engines`).

:func:`cnn_bilstm` and the other functions of :data:`PRESETS` build a
detector from one flat table of settings, the way configs write them.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(600, random_state=0)
>>> det = cnn_bilstm(max_epochs=2, verbose=False).fit(flows)
>>> det.predict_proba(flows).shape == (600, len(det.classes_))
True
>>> bool(((det.decision_function(flows) >= 0) & (det.decision_function(flows) <= 1)).all())
True
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..choices import BACKENDS, MODES
from ..errors import ConfigError, DataError, MissingColumnsError
from ..features import FeatureConfig, make_windows
from . import params as checks
from .base import BaseDetector, DetectorState
from .engines import InferenceConfig, OnnxEngine, TorchEngine, export_onnx, onnxruntime_available
from .inputs import ArraySource, WindowSource
from .presets import NETWORKS, network_class, network_defaults, normalise_network_params, split_params

__all__ = ["DeepDetector", "TorchBackend", "class_weights", "MONITORS", "PRESETS", "cnn_bilstm", "preset",
           "WEIGHTS_LAYOUT"]

log = logging.getLogger(__name__)

#: Validation metrics that early stopping and the best checkpoint can watch.
MONITORS = ("f1_macro", "f1_weighted", "accuracy", "roc_auc")
#: The layout of saved weights: PyTorch state-dict names and shapes, without ``num_batches_tracked``.
WEIGHTS_LAYOUT = "torch-state-dict-v1"


def class_weights(y: np.ndarray, n_classes: int, scheme: str, max_weight: float = 1000.0,
                  counts: np.ndarray | None = None) -> np.ndarray | None:
    """Loss weights per class for imbalanced data.

    ``balanced`` weighs each class by ``n / (k * n_c)`` (every class counts
    as much in total); ``sqrt`` takes its square root (gentler on classes
    with a handful of rows); ``none`` gives no weights. ``counts`` (rows per
    class) replaces the counts of ``y``: all processes' counts, in distributed training.

    >>> class_weights(np.array([0, 0, 0, 1]), 2, "balanced").round(3).tolist()
    [0.667, 2.0]
    """
    if scheme == "none":
        return None
    counts = np.bincount(y, minlength=n_classes) if counts is None else np.asarray(counts)
    counts = counts.astype("float64")
    w = counts.sum() / (n_classes * np.maximum(counts, 1.0))
    if scheme == "sqrt":
        w = np.sqrt(w)
    elif scheme != "balanced":
        raise ConfigError(f"class_weight must be 'balanced', 'sqrt' or 'none', got {scheme!r}")
    return np.minimum(w, max_weight)


def validation_metrics(y: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """What early stopping and the best checkpoint can watch (see :data:`MONITORS`).

    ``roc_auc`` ranks attack against benign by the anomaly score, 1 - P(class 0):
    class 0 is Benign whenever the training flows have benign ones (it is
    0.5 when they have not).
    """
    from sklearn.metrics import f1_score, roc_auc_score

    pred = logits.argmax(axis=1)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    score = 1.0 - shifted[:, 0] / shifted.sum(axis=1)
    attack = y != 0
    return {
        "accuracy": float((pred == y).mean()),
        "f1_macro": float(f1_score(y, pred, average="macro", labels=np.unique(y), zero_division=0)),
        "f1_weighted": float(f1_score(y, pred, average="weighted", labels=np.unique(y), zero_division=0)),
        "roc_auc": float(roc_auc_score(attack, score)) if attack.any() and (~attack).any() else 0.5,
    }


class TorchBackend:
    """Builds and trains a network in PyTorch (the default backend)."""

    name = "torch"

    def check(self, det: "DeepDetector") -> None:
        """Every network runs in PyTorch: nothing to refuse."""

    def seed(self, det: "DeepDetector") -> None:
        import torch

        if det.num_threads:
            torch.set_num_threads(int(det.num_threads))
        torch.manual_seed(det.random_state)

    def build(self, det: "DeepDetector", n_inputs: int, n_classes: int):
        return network_class(det.network)(n_inputs, n_classes, **det.network_kwargs())

    def fit_inputs(self, net, matrix: np.ndarray) -> None:
        fit = getattr(net, "fit_inputs", None)
        if fit is not None:
            fit(matrix)

    def trainer(self, det: "DeepDetector", net, weights: np.ndarray | None):
        """The shared loop, with AdamW, a cosine schedule and the class-weighted loss."""
        import torch
        from torch import nn

        from .loop import Trainer

        loss = nn.CrossEntropyLoss(weight=None if weights is None else torch.tensor(weights, dtype=torch.float32))
        optimizer = torch.optim.AdamW(net.parameters(), lr=det.lr, weight_decay=det.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(det.max_epochs, 1))
        return Trainer(net, loss, optimizer, validation_metrics, batch_size=det.batch_size, max_epochs=det.max_epochs,
                       callbacks=det.training_callbacks(), seed=det.random_state, scheduler=scheduler,
                       distributed=det.distributed, compile=bool(det.torch_compile))

    def state(self, net) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().contiguous().numpy() for k, v in net.state_dict().items()
                if not k.endswith("num_batches_tracked")}

    def load(self, net, arrays: dict[str, np.ndarray]) -> None:
        import torch

        missing, unexpected = net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()},
                                                  strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise DataError(f"weights do not fit the architecture (missing {missing}, unexpected {unexpected})")
        net.eval()

    def engine(self, net, config: InferenceConfig) -> TorchEngine:
        return TorchEngine(net, config.intra_op_threads)


def backend_for(name: str):
    """The training backend called ``name``."""
    if name == "torch":
        return TorchBackend()
    if name == "mindspore":
        from ..backends.mindspore import MindSporeBackend

        return MindSporeBackend()
    raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {name!r}")


class DeepDetector(BaseDetector):
    """A supervised deep detector: a named network, the shared training loop, a chosen engine.

    Parameters:
        network: the network's name (see :data:`~flowsentinel.models.presets.NETWORKS`).
        network_params: its settings (``conv_channels``, ``lstm_hidden``,
            ``input_bins`` ...); unset ones keep the network class's defaults.
        task: ``multiclass`` (attack type) or ``binary`` (attack or benign).
        mode: ``flow`` (each flow alone) or ``window`` (the last ``window``
            flows of the same ``window_key``, in ``time_column`` order).
        window, window_key, time_column: the windowing ("time-series
            reconstruction"); ``time_column=None`` uses
            ``FLOW_START_MILLISECONDS`` where the table has it, else table order.
        batch_size, max_epochs, patience: training length.
        monitor: the validation metric that early stopping and the best
            checkpoint watch: ``f1_macro`` (default), ``f1_weighted``,
            ``accuracy`` or ``roc_auc`` (attack against benign, by the score).
        lr, weight_decay: AdamW.
        class_weight: ``balanced``, ``sqrt`` or ``none`` (see :func:`class_weights`).
        val_fraction: share of the training rows held out for early stopping
            when no validation set is passed to ``fit``.
        threshold, target_far: the alert threshold policy
            (:class:`~flowsentinel.models.thresholds.ThresholdPolicy`).
        feature_config: preprocessing (:class:`~flowsentinel.features.FeatureConfig`).
        callbacks: extra training callbacks, after early stopping, the best
            checkpoint and the progress bar (tuning adds pruning here).
        backend: ``torch`` or ``mindspore``: the framework that trains.
        distributed: set by :mod:`flowsentinel.training.distributed` when this
            process is one of several training one model (PyTorch backend
            only); not saved.
        random_state: seeds weights, shuffling and the validation hold-out.
        num_threads: CPU threads of the framework (``None``: its default).
        torch_compile: train full batches through ``torch.compile`` (PyTorch
            backend, one process). The same network and the same steps, with
            its elementwise work fused: about 1.5-2x the training flows/s of
            the ``configs/paper.toml`` network, for about a minute of
            compiling at the first batch, so worth it for long runs only
            (``docs/training-speed.md``). Falls back to eager where compiling
            fails. Not saved: it changes how a model is trained, not the model.
        verbose: progress bars and per-epoch log lines.
    """

    needs_validation = True
    #: Parameters that configure one run, not the model: not saved.
    transient_params = ("callbacks", "distributed", "torch_compile")

    def __init__(
        self,
        network: str = "cnn-bilstm",
        network_params: dict[str, Any] | None = None,
        task: str = "multiclass",
        mode: str = "flow",
        window: int = 8,
        window_key: str = "IPV4_SRC_ADDR",
        time_column: str | None = None,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 4,
        monitor: str = "f1_macro",
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        class_weight: str = "sqrt",
        val_fraction: float = 0.15,
        threshold: float | None = None,
        target_far: float | None = None,
        feature_config: FeatureConfig | None = None,
        callbacks: tuple = (),
        backend: str = "torch",
        distributed: Any = None,
        random_state: int = 0,
        num_threads: int | None = None,
        torch_compile: bool = False,
        verbose: bool = True,
    ):
        self.network = network
        self.network_params = network_params
        self.task = task
        self.mode = mode
        self.window = window
        self.window_key = window_key
        self.time_column = time_column
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.monitor = monitor
        self.lr = lr
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.val_fraction = val_fraction
        self.threshold = threshold
        self.target_far = target_far
        self.feature_config = feature_config
        self.callbacks = callbacks
        self.backend = backend
        self.distributed = distributed
        self.random_state = random_state
        self.num_threads = num_threads
        self.torch_compile = torch_compile
        self.verbose = verbose

    # ---- parameters --------------------------------------------------------
    def _check_params(self) -> None:
        if self.network not in NETWORKS:
            raise ConfigError(f"unknown network {self.network!r}; known: {', '.join(NETWORKS)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        if self.distributed is not None and self.backend != "torch":
            raise ConfigError(f"distributed training runs PyTorch's DistributedDataParallel: backend must be 'torch', "
                              f"got {self.backend!r}")
        checks.positive_int("window", self.window)
        checks.positive_int("batch_size", self.batch_size, 2)
        checks.positive_int("max_epochs", self.max_epochs)
        checks.positive_int("patience", self.patience)
        checks.one_of("monitor", self.monitor, MONITORS)
        checks.number_in("lr", self.lr, 0.0, 10.0, low_open=True)
        checks.number_in("weight_decay", self.weight_decay, 0.0, 1.0)
        checks.one_of("class_weight", self.class_weight, ("balanced", "sqrt", "none"))
        if self.num_threads is not None:
            checks.positive_int("num_threads", self.num_threads)
        params = self.network_kwargs()
        for name, value in params.items():
            if name in ("conv_channels", "hidden_layers", "channels"):
                checks.positive_ints(name, value)
            elif name in ("kernel_size", "pool", "lstm_hidden", "lstm_layers", "dense", "hidden", "layers"):
                checks.positive_int(name, value)
            elif name == "input_bins":
                checks.nonnegative_int(name, value)
            elif name == "dropout":
                checks.number_in(name, value, 0.0, 1.0, high_open=True)

    def network_kwargs(self) -> dict[str, Any]:
        """Everything the network class is built with: mode and window, then its settings."""
        return {"mode": self.mode, "window": int(self.window),
                **normalise_network_params(self.network, self.network_params)}

    def training_callbacks(self) -> list:
        """Callbacks of one ``fit``, in order: early stopping, best checkpoint, progress, then ``callbacks``."""
        from .loop import BestCheckpoint, EarlyStopping, ProgressBar

        return [EarlyStopping(self.monitor, self.patience), BestCheckpoint(self.monitor), ProgressBar(self.verbose),
                *self.callbacks]

    # ---- inputs ----------------------------------------------------------
    def _time_order(self, X: pd.DataFrame) -> np.ndarray | None:
        col = self.time_column or ("FLOW_START_MILLISECONDS" if "FLOW_START_MILLISECONDS" in X.columns else None)
        if col is None:
            return None
        if col not in X.columns:
            raise MissingColumnsError(f"time column {col!r} is not in the flow table")
        return X[col].to_numpy()

    def model_input(self, X: pd.DataFrame, matrix: np.ndarray | None = None):
        """The network's input for a flow table: a batch source of flows or windows."""
        if matrix is None:
            matrix = self._transform(X)
        if self.mode == "flow":
            return ArraySource(matrix)
        if self.window_key not in X.columns:
            raise MissingColumnsError(f"windowed mode groups flows by {self.window_key!r}, which the flow table lacks")
        windows = make_windows(X[self.window_key].to_numpy(), self._time_order(X), self.window)
        return WindowSource(matrix, windows)

    def check_columns(self, columns, where: str = "flow table") -> None:
        super().check_columns(columns, where)
        if self.mode == "window" and self.window_key not in set(columns):
            raise MissingColumnsError(f"{where}: windowed model groups flows by {self.window_key}, which is missing")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's model-input shape: ``(n_inputs,)`` or ``(window, n_inputs)``."""
        n_inputs = len(self.features_.output_names_)
        return (n_inputs,) if self.mode == "flow" else (int(self.window), n_inputs)

    # ---- training --------------------------------------------------------
    def _fit(self, X, y, X_val, y_val) -> None:
        backend = backend_for(self.backend)
        backend.seed(self)
        shared = self.distributed  # every process must agree on the classes, the preprocessing and the weights
        if shared is None:
            codes = self._set_classes(y)
            matrix = self._fit_features(X)
        else:
            codes = self._set_classes(np.concatenate([y, shared.all_labels(y)]))[: len(y)]
            self.features_ = shared.fitted_features(self.feature_config or FeatureConfig(), X)
            self._set_feature_names()
            matrix = self.features_.transform(X)
        codes_val = self._codes(y_val)
        train_src = self.model_input(X, matrix)
        val_src = self.model_input(X_val, self.features_.transform(X_val))
        n_classes = len(self.classes_)
        counts = None if shared is None else shared.sum(np.bincount(codes, minlength=n_classes))
        net = backend.build(self, train_src.X.shape[1], n_classes)
        backend.fit_inputs(net, train_src.X)
        self._train(backend, net, train_src, codes, val_src, codes_val, counts)
        self.n_train_flows_ = int(len(X))

    def _train(self, backend, net, train_src, codes, val_src, codes_val, counts=None) -> None:
        """The shared loop on prepared inputs; the network, engine and history are kept.

        ``counts``: the classes' row counts over every process of a distributed run."""
        weights = class_weights(codes, len(self.classes_), self.class_weight, counts=counts)
        trainer = backend.trainer(self, net, weights)
        trainer.fit(train_src, codes, val_src, codes_val)
        self.network_ = net
        self.inference_ = InferenceConfig(engine="torch", intra_op_threads=self.num_threads)
        self.engine_ = backend.engine(net, self.inference_)
        self.history_ = [
            {"epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss,
             **{f"val_{k}": v for k, v in r.val_metrics.items()}, "seconds": r.seconds, "flows_per_s": r.flows_per_s}
            for r in trainer.history
        ]
        self.best_epoch_ = trainer.best_epoch
        self.class_weights_ = None if weights is None else weights.tolist()

    def fine_tune(self, X: pd.DataFrame, y: Any = None, *, X_val: pd.DataFrame, y_val: Any = None,
                  max_epochs: int = 5, lr: float | None = None) -> "DeepDetector":
        """Go on training the fitted network on new flows, keeping its preprocessing and classes.

        For adapting a model to a network's own traffic: ``X`` mixes the new
        flows with the original training flows so that what was learned stays
        learned. The best epoch on ``X_val`` is kept, and the threshold policy
        is applied to it again. Labels must be classes the model has.
        """
        self._check_fitted()
        checks.positive_int("max_epochs", max_epochs)
        y, y_val = self._targets(X, y), self._targets(X_val, y_val)
        codes, codes_val = self._codes(y, "fine-tuning"), self._codes(y_val)
        backend = backend_for(self.backend)
        backend.seed(self)
        net = self.network_module
        self.set_params(max_epochs=int(max_epochs), **({} if lr is None else {"lr": float(lr)}))
        self._train(backend, net, self.model_input(X), codes, self.model_input(X_val), codes_val)
        self.threshold_ = self._fit_threshold(self.threshold_policy(), X_val, y_val)
        self.n_fine_tune_flows_ = int(len(X))
        return self

    # ---- scoring ---------------------------------------------------------
    def _check_fitted(self) -> None:
        super()._check_fitted()
        if not hasattr(self, "engine_") and not hasattr(self, "weights_"):
            from ..errors import NotFittedError

            raise NotFittedError(f"{type(self).__name__} has no network: call fit() or load a saved model")

    def probabilities(self, source, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities of every example of a batch source, through the engine."""
        engine = self.engine
        step = batch_size or self.inference_.batch_size
        n = len(source)
        whole = source.X if isinstance(source, ArraySource) else None
        parts = []
        for start in range(0, n, step):
            stop = min(start + step, n)
            # Per-flow input is one contiguous array: a slice is a view, no copy.
            batch = whole[start:stop] if whole is not None else source.take(np.arange(start, stop))
            parts.append(engine(batch))
        if not parts:
            return np.zeros((0, len(self.classes_)), np.float32)
        return np.concatenate(parts)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return self.probabilities(self.model_input(X))

    # ---- engines -----------------------------------------------------------
    @property
    def engine(self) -> Callable[[np.ndarray], np.ndarray]:
        """What runs the forward pass now (set by ``fit``, :meth:`use_engine` or
        :meth:`use_backend_engine`; PyTorch by default on a loaded model)."""
        self._check_fitted()
        if not hasattr(self, "engine_"):
            self.use_engine(InferenceConfig(engine="torch"))
        return self.engine_

    @property
    def network_module(self):
        """The trained network in the training backend's framework, built from the weights on first use."""
        if not hasattr(self, "network_"):
            self._check_fitted()
            backend = backend_for(self.backend)
            net = backend.build(self, *self._weights_shape())
            backend.load(net, self.weights_)
            self.network_ = net
        return self.network_

    def _weights_shape(self) -> tuple[int, int]:
        return len(self.features_.output_names_), len(self.classes_)

    def torch_module(self):
        """The network as a PyTorch module (for export, attribution and the torch engine), whatever trained it."""
        if self.backend == "torch":
            return self.network_module
        if not hasattr(self, "torch_network_"):
            module = TorchBackend().build(self, *self._weights_shape())
            TorchBackend().load(module, self.canonical_weights())
            self.torch_network_ = module
        return self.torch_network_

    def canonical_weights(self) -> dict[str, np.ndarray]:
        """The weights in the canonical layout (:data:`WEIGHTS_LAYOUT`)."""
        if not hasattr(self, "network_"):
            self._check_fitted()
            return dict(self.weights_)
        return backend_for(self.backend).state(self.network_)

    def onnx_graph(self) -> bytes:
        """The network exported to ONNX, with the model's identity in its metadata."""
        meta = {
            "flowsentinel.output": "probabilities",
            "flowsentinel.classes": ",".join(str(c) for c in self.classes_),
            "flowsentinel.mode": self.mode,
            "flowsentinel.window": str(int(self.window)),
            "flowsentinel.n_inputs": str(len(self.features_.output_names_)),
        }
        return export_onnx(self.torch_module(), self.input_shape, meta)

    def use_engine(self, config: InferenceConfig = InferenceConfig(), graph: bytes | None = None) -> str:
        """Choose the engine for scoring; returns its name (``onnx`` or ``torch``).

        ``auto`` takes ONNX Runtime where it imports (with ``graph``, the
        saved ``model.onnx``, else an export made now) and PyTorch otherwise,
        logging why. ``onnx`` fails where ONNX Runtime is missing. ``torch``
        runs the PyTorch network, whichever framework trained it.
        """
        self._check_fitted()
        self.inference_ = config
        if config.engine in ("auto", "onnx"):
            ok, why = onnxruntime_available()
            if ok:
                self.engine_ = OnnxEngine(graph if graph is not None else self.onnx_graph(), config)
                log.info("scoring with ONNX Runtime (%s intra-op threads, batch %d)",
                         config.intra_op_threads or "default", config.batch_size)
                return "onnx"
            if config.engine == "onnx":
                raise ConfigError(f"inference engine 'onnx' needs onnxruntime, which cannot be imported ({why}); "
                                  "install it with: pip install 'flowsentinel[fast]', or use engine 'torch'")
            log.info("scoring with PyTorch: onnxruntime cannot be imported (%s); pip install 'flowsentinel[fast]' "
                     "for the faster engine", why)
        self.engine_ = TorchEngine(self.torch_module(), config.intra_op_threads)
        return "torch"

    def check_backend(self) -> None:
        """Raise :class:`~flowsentinel.errors.ConfigError` if the training backend cannot run this network."""
        backend_for(self.backend).check(self)

    def use_backend_engine(self, config: InferenceConfig = InferenceConfig()) -> str:
        """Score with the training backend's own forward pass (MindSpore's compiled graph)."""
        self.inference_ = config
        self.engine_ = backend_for(self.backend).engine(self.network_module, config)
        return self.engine_.name

    # ---- state -----------------------------------------------------------------
    def _get_state(self) -> DetectorState:
        arch = {
            "network": NETWORKS[self.network].split(":")[1],
            "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in self.network_kwargs().items()},
            "n_inputs": len(self.features_.output_names_),
            "n_classes": len(self.classes_),
            "weights_layout": WEIGHTS_LAYOUT,
        }
        training = {
            "history": getattr(self, "history_", []),
            "best_epoch": getattr(self, "best_epoch_", None),
            "class_weights": getattr(self, "class_weights_", None),
            "fit_seconds": getattr(self, "fit_seconds_", None),
            "n_train_flows": getattr(self, "n_train_flows_", None),
        }
        return DetectorState(self.canonical_weights(), {"architecture": arch, "training": training})

    def _set_state(self, state: DetectorState) -> None:
        arch = state.fields.get("architecture") or {}
        if arch.get("weights_layout") != WEIGHTS_LAYOUT:
            raise DataError(f"unknown weights layout {arch.get('weights_layout')!r} (expected {WEIGHTS_LAYOUT!r})")
        n_inputs, n_classes = self._weights_shape()
        if (arch.get("n_inputs"), arch.get("n_classes")) != (n_inputs, n_classes):
            raise DataError(f"the network takes {arch.get('n_inputs')} inputs and gives {arch.get('n_classes')} "
                            f"classes, but the preprocessing gives {n_inputs} and the classes list {n_classes}")
        self.weights_ = dict(state.arrays)
        training = state.fields.get("training") or {}
        self.history_ = training.get("history", [])
        self.best_epoch_ = training.get("best_epoch")


# ---- presets -----------------------------------------------------------------------


def preset(network: str, **flat: Any) -> DeepDetector:
    """A :class:`DeepDetector` for ``network`` from one flat table of settings (a config's ``[model]``)."""
    estimator, net = split_params(network, flat)
    given = dict(estimator.pop("network_params", None) or {})
    estimator.pop("network", None)
    unknown = sorted(set(estimator) - set(DeepDetector._param_names()))
    if unknown:
        known = (set(DeepDetector._param_names()) | set(network_defaults(network))) - {"callbacks", "network_params"}
        raise ConfigError(f"{network}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return DeepDetector(network=network, network_params={**given, **net} or None, **estimator)


def cnn_bilstm(**flat: Any) -> DeepDetector:
    """The CNN-BiLSTM of Xiang et al. 2025 (flat settings, as :func:`preset`)."""
    return preset("cnn-bilstm", **flat)


#: Short name -> factory taking flat settings, for every deep preset.
PRESETS: dict[str, Callable[..., DeepDetector]] = {name: (lambda n: lambda **kw: preset(n, **kw))(name)
                                                    for name in NETWORKS}
