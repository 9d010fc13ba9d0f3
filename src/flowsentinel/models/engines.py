"""Engines: what runs a fitted network's forward pass, chosen inside the detector.

A deep detector turns flows into model input (preprocessing, windows) and
hands batches of it to its engine, which returns class probabilities:

* :class:`TorchEngine`: the PyTorch network itself;
* :class:`OnnxEngine`: the network exported to ONNX (softmax inside the
  graph) and run by ONNX Runtime, the default for scoring because it
  measured faster on the CNN-BiLSTM (``benchmarks/bench_inference.py``);
  it needs neither PyTorch nor scikit-learn, so a scoring process that
  uses it starts quickly;
* the MindSpore engine, in :mod:`flowsentinel.backends.mindspore`.

:func:`export_onnx` writes the graph; a saved model keeps it as
``model.onnx`` beside the weights (see :mod:`flowsentinel.persistence`).

>>> InferenceConfig().engine, InferenceConfig().batch_size
('auto', 4096)
"""

from __future__ import annotations

import copy
import importlib
import io
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..choices import ENGINES
from ..errors import ConfigError

__all__ = [
    "ONNX_FILE",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "DEFAULT_OPSET",
    "InferenceConfig",
    "Engine",
    "TorchEngine",
    "OnnxEngine",
    "export_onnx",
    "onnxruntime_available",
]

log = logging.getLogger(__name__)

#: File name of the exported network inside a model directory.
ONNX_FILE = "model.onnx"
#: Opset used for export; 17 has every op the networks need (Conv, LSTM, GRU, Softmax).
DEFAULT_OPSET = 17
#: A network slower than this a row (seconds) is "heavy": smaller ONNX Runtime slices
#: (:class:`InferenceConfig` ``cache_rows``) and, in ``detect``, two scoring workers.
HEAVY_NETWORK_S = 5e-6
INPUT_NAME = "model_input"
OUTPUT_NAME = "probabilities"


@dataclass(frozen=True)
class InferenceConfig:
    """How a deep model is run when scoring.

    Attributes:
        engine: ``auto`` (ONNX Runtime where importable, else PyTorch, with
            the reason logged), ``onnx`` (fail if ONNX Runtime is missing) or
            ``torch``.
        intra_op_threads: threads inside one operator (ONNX Runtime
            ``intra_op_num_threads``; ``torch.set_num_threads`` on the
            PyTorch path, which is process-wide). Default 1: on the shared
            2-core machine one thread scored as fast as two through ONNX
            Runtime and PyTorch collapsed with two (threads waiting on
            each other while other processes hold the cores); raise it on a
            dedicated host. ``None`` keeps the engine's default (one per
            physical core).
        inter_op_threads: threads across independent operators (ONNX
            Runtime ``inter_op_num_threads``, sequential execution). The
            CNN-BiLSTM is one chain of operators, so 1 is enough.
        batch_size: rows per network call; each call scores at most this many
            flows (or windows).
        cache_rows: ONNX Runtime runs a batch in slices of at most this many
            rows, so that the convolutions' activations stay in the CPU
            caches; the results are the same, only faster. ``auto`` (the
            default): 256 rows for a network that takes more than
            :data:`HEAVY_NETWORK_S` a row (timed on zeros when the session is
            made), else 1,024. On the 2-core Xeon, ``detect`` on 1M flows
            ran the ``configs/paper.toml`` network (about 10 kB of
            activations a flow in its first block) at 84,600-85,600 flows/s
            in slices of 256 against 71,200-73,500 in slices of 1,024, and
            the default network at 271,000-281,000 against 278,000-306,000
            (three runs each). ``None`` runs each batch whole.
        spin: let ONNX Runtime's worker threads spin between calls. Off by
            default: spinning gains little at batch 4096 and burns CPU that
            the rest of the pipeline (reading, preprocessing) needs.
    """

    engine: str = "auto"
    intra_op_threads: int | None = 1
    inter_op_threads: int | None = 1
    batch_size: int = 4096
    cache_rows: int | str | None = "auto"
    spin: bool = False

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ConfigError(f"inference engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.batch_size < 1:
            raise ConfigError(f"inference batch_size must be at least 1, got {self.batch_size}")
        if isinstance(self.cache_rows, str):
            if self.cache_rows != "auto":
                raise ConfigError(f"inference cache_rows must be 'auto', a number of rows or None, got {self.cache_rows!r}")
        elif self.cache_rows is not None and self.cache_rows < 1:
            raise ConfigError(f"inference cache_rows must be at least 1 (or 'auto', or None), got {self.cache_rows}")
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"inference {name} must be at least 1 (or None for the engine default), got {value}")


class Engine(Protocol):
    """Runs one batch of model input; returns class probabilities ``(batch, n_classes)``."""

    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def onnxruntime_available() -> tuple[bool, str]:
    """Whether ``onnxruntime`` imports here, and why not."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError as exc:
        return False, str(exc)
    return True, ""


class TorchEngine:
    """The PyTorch network, in eval mode, with a softmax on its logits."""

    name = "torch"

    def __init__(self, module, threads: int | None = None):
        import torch

        if threads is not None:
            torch.set_num_threads(int(threads))
        self.module = module.eval()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return torch.softmax(self.module(torch.from_numpy(np.ascontiguousarray(batch, np.float32))), dim=1).numpy()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).float().numpy()


class OnnxEngine:
    """One ONNX Runtime session over an exported graph.

    Args:
        model: serialized ONNX graph (bytes) or a path to one.
        config: threads and spinning (:class:`InferenceConfig`).
    """

    name = "onnx"

    def __init__(self, model: bytes | str | Path, config: InferenceConfig = InferenceConfig()):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Errors only: the graph optimizer's notes (an unused initializer in a graph saved by an older
        # version) are not for the person reading detect's output.
        options.log_severity_level = 3
        if config.intra_op_threads is not None:
            options.intra_op_num_threads = int(config.intra_op_threads)
        if config.inter_op_threads is not None:
            options.inter_op_num_threads = int(config.inter_op_threads)
        spin = "1" if config.spin else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        source = str(model) if isinstance(model, (str, Path)) else model
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.config = config
        self._cost: float | None = None
        self._timed = False
        self.rows = config.cache_rows
        if self.rows == "auto":
            self.rows = None  # the timing batch runs whole
            cost = self.seconds_per_row()
            self.rows = 256 if cost is not None and cost > HEAVY_NETWORK_S else 1024

    def seconds_per_row(self, rows: int = 256, repeat: int = 2) -> float | None:
        """The network's time a row, timed on a batch of zeros (best of ``repeat``, after one warm-up call).

        Timed once per session; ``None`` where the graph's input has other
        dynamic axes than the batch.
        """
        if self._timed:
            return self._cost
        self._timed = True
        shape = self.session.get_inputs()[0].shape[1:]
        if not all(isinstance(d, int) and d > 0 for d in shape):
            return None
        batch = np.zeros((rows, *shape), np.float32)
        self(batch)
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            self(batch)
            best = min(best, time.perf_counter() - t0)
        self._cost = best / rows
        return self._cost

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = self.rows
        if step is None or len(batch) <= step:
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return np.concatenate([self.session.run([OUTPUT_NAME], {INPUT_NAME: batch[i : i + step]})[0]
                               for i in range(0, len(batch), step)])


def _probability_graph(module):
    """The network with a softmax on top, in eval mode, detached from the caller's copy."""
    import torch
    from torch import nn

    class WithSoftmax(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(x), dim=1)

    # A copy: the exporter switches train/eval modes and restores them on the
    # object it was given, which must not touch the detector's own module.
    return WithSoftmax(copy.deepcopy(module)).eval()


def export_onnx(module, input_shape: tuple[int, ...], metadata: dict[str, str] | None = None,
                path: str | Path | None = None, opset: int = DEFAULT_OPSET) -> bytes:
    """Export a PyTorch network (with softmax) to ONNX; returns the serialized graph.

    The CNN-BiLSTM is written as matrix products by
    :func:`~flowsentinel.models.onnx_graph.cnn_bilstm_graph` where it covers the
    network (faster in ONNX Runtime); other networks go through PyTorch's exporter.

    ``input_shape`` is one example's shape: ``(n_inputs,)`` per flow,
    ``(window, n_inputs)`` windowed. The graph's input ``model_input`` has a
    dynamic batch axis in front of it; its output ``probabilities`` is
    ``(batch, n_classes)``. ``metadata`` goes into the graph's properties.
    Writes ``path`` when given.
    """
    from .onnx_graph import cnn_bilstm_graph

    model = cnn_bilstm_graph(module, tuple(input_shape), INPUT_NAME, OUTPUT_NAME, opset)
    if model is None:
        model = _exported_graph(module, input_shape, opset)
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()
    if path is not None:
        Path(path).write_bytes(data)
        log.info("ONNX graph written to %s (opset %d)", path, opset)
    return data


def _exported_graph(module, input_shape: tuple[int, ...], opset: int):
    """The network with softmax through PyTorch's exporter, as an ``onnx.ModelProto``."""
    import onnx
    import torch

    graph = _probability_graph(module)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy and that LSTM
        # batch sizes are traced; neither applies to a fixed-architecture
        # export with a declared dynamic batch axis.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (torch.zeros(2, *input_shape),),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())
