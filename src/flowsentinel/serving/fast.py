"""Fast scoring: the deep models exported to ONNX and run by ONNX Runtime.

The exported graph takes the preprocessed model input, float32 ``(batch,
n_inputs)`` in per-flow mode or ``(batch, window, n_inputs)`` in windowed
mode, with a dynamic batch axis, and returns **class probabilities**
``(batch, n_classes)``: the softmax is inside the graph, so the output is
what ``predict_proba`` returns and can be compared with the PyTorch path
directly. Preprocessing and windowing stay in Python and are reused from the
wrapped detector (``detector._transform``, ``detector._source``).

:func:`fast_detector` wraps a fitted deep detector in a :class:`FastDetector`
that keeps the detector contract (``predict_proba``, ``decision_function``,
``predict``, ``scores_from_proba``, ``labels_from_proba``, ``check_columns``,
``threshold_``, ``classes_``, ``mode``, ``manifest_``) but runs the network
through ONNX Runtime where it is installed and through PyTorch otherwise.

>>> from flowsentinel.synthetic import generate_flows
>>> from flowsentinel.models.deep import CNNBiLSTMDetector
>>> flows = generate_flows(400, random_state=0)
>>> det = CNNBiLSTMDetector(max_epochs=1, verbose=False).fit(flows)
>>> fast = fast_detector(det, InferenceConfig(engine="auto", intra_op_threads=1))
>>> fast.engine_ in ("onnx", "torch")
True
>>> bool(max_abs_diff(det, fast, flows) <= 1e-5)
True
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError

__all__ = [
    "ONNX_FILE",
    "InferenceConfig",
    "OnnxScorer",
    "FastDetector",
    "export_onnx",
    "write_onnx",
    "fast_detector",
    "load_fast_detector",
    "state_digest",
    "max_abs_diff",
]

log = logging.getLogger(__name__)

#: File name of the exported network inside a model directory.
ONNX_FILE = "model.onnx"
#: Opset used for export; 17 has every op the CNN-BiLSTM needs (Conv, LSTM, Softmax).
DEFAULT_OPSET = 17
INPUT_NAME = "model_input"
OUTPUT_NAME = "probabilities"
ENGINES = ("auto", "onnx", "torch")


@dataclass(frozen=True)
class InferenceConfig:
    """How ``detect`` runs a deep model.

    Attributes:
        engine: ``auto`` (ONNX Runtime where importable, else PyTorch, with
            the reason logged), ``onnx`` (fail if ONNX Runtime is missing) or
            ``torch``. ``auto`` is the default because ONNX Runtime measured
            faster on the CNN-BiLSTM (``benchmarks/bench_inference.py``).
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
            rows, so that the convolutions' activations (about 10 kB a flow
            for the first block) stay in the CPU caches; the results are the
            same, only faster (about 15% at 1,024 against 4,096 rows on a
            2-core Xeon). ``None`` runs each batch whole.
        spin: let ONNX Runtime's worker threads spin between calls. Off by
            default: spinning gains little at batch 4096 and burns CPU that
            the rest of the pipeline (reading, preprocessing) needs.
    """

    engine: str = "auto"
    intra_op_threads: int | None = 1
    inter_op_threads: int | None = 1
    batch_size: int = 4096
    cache_rows: int | None = 1024
    spin: bool = False

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ConfigError(f"inference engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.batch_size < 1:
            raise ConfigError(f"inference batch_size must be at least 1, got {self.batch_size}")
        if self.cache_rows is not None and self.cache_rows < 1:
            raise ConfigError(f"inference cache_rows must be at least 1 (or None), got {self.cache_rows}")
        for name in ("intra_op_threads", "inter_op_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"inference {name} must be at least 1 (or None for the engine default), got {value}")


def _onnxruntime():
    """The ``onnxruntime`` module; raises ImportError where it is not installed."""
    return importlib.import_module("onnxruntime")


def _torch_network(detector):
    """The detector's PyTorch network, or ``None`` (tree ensembles, other backends' networks)."""
    module = getattr(detector, "module_", None)
    if module is None:
        return None
    from torch import nn

    return module if isinstance(module, nn.Module) else None


def state_digest(module) -> str:
    """SHA-256 over a network's state-dict names and tensor bytes.

    Stored in the exported graph, so that a ``model.onnx`` left over from
    other weights is noticed and not used.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _example_input(detector):
    import torch

    n_inputs = len(detector.features_.output_names_)
    if getattr(detector, "mode", "flow") == "window":
        return torch.zeros(2, int(detector.window), n_inputs)
    return torch.zeros(2, n_inputs)


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


def export_onnx(detector, path: str | Path | None = None, opset: int = DEFAULT_OPSET) -> bytes:
    """Export a fitted deep detector's network (with softmax) to ONNX.

    The graph's input ``model_input`` is float32 ``(batch, n_inputs)`` in
    per-flow mode, ``(batch, window, n_inputs)`` in windowed mode; its output
    ``probabilities`` is ``(batch, n_classes)``; the batch axis is dynamic.
    The graph's metadata records the classes, mode, window and
    :func:`state_digest` of the weights. Writes ``path`` when given; returns
    the serialized model either way.
    """
    import onnx
    import torch

    module = _torch_network(detector)
    if module is None:
        raise TypeError(f"{type(detector).__name__} has no PyTorch network to export (is it fitted, and a deep model?)")
    graph = _probability_graph(module)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy and that LSTM
        # batch sizes are traced; neither applies to a fixed-architecture
        # export with a declared dynamic batch axis.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (_example_input(detector),),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load_from_string(buffer.getvalue())
    meta = {
        "flowsentinel.output": "probabilities",
        "flowsentinel.classes": json.dumps([str(c) for c in detector.classes_]),
        "flowsentinel.mode": getattr(detector, "mode", "flow"),
        "flowsentinel.window": str(int(getattr(detector, "window", 0) or 0)),
        "flowsentinel.n_inputs": str(len(detector.features_.output_names_)),
        "flowsentinel.weights_sha256": state_digest(module),
    }
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    data = model.SerializeToString()
    if path is not None:
        Path(path).write_bytes(data)
        log.info("ONNX graph written to %s (opset %d)", path, opset)
    return data


def write_onnx(model_dir: str | Path, detector, opset: int = DEFAULT_OPSET) -> Path | None:
    """Write ``model.onnx`` beside a saved deep model; ``None`` for models without a PyTorch network."""
    if _torch_network(detector) is None:
        return None
    path = Path(model_dir) / ONNX_FILE
    export_onnx(detector, path, opset)
    return path


class OnnxScorer:
    """One ONNX Runtime session over an exported graph.

    Args:
        model: serialized ONNX graph (bytes) or a path to one.
        config: threads and spinning (:class:`InferenceConfig`).
    """

    def __init__(self, model: bytes | str | Path, config: InferenceConfig = InferenceConfig()):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
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

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of one batch of model input."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = self.config.cache_rows
        if step is None or len(batch) <= step:
            return self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return np.concatenate([self.session.run([OUTPUT_NAME], {INPUT_NAME: batch[i : i + step]})[0]
                               for i in range(0, len(batch), step)])


class FastDetector:
    """A fitted deep detector whose network runs through ONNX Runtime or PyTorch.

    Everything but the network (preprocessing, windowing, classes,
    threshold, manifest) is the wrapped detector's; attributes not defined
    here are looked up on it.

    Attributes:
        detector: the wrapped detector.
        engine_: ``"onnx"`` or ``"torch"``, the engine actually in use.
        config: the :class:`InferenceConfig`.
    """

    def __init__(self, detector, config: InferenceConfig = InferenceConfig(), scorer: OnnxScorer | None = None):
        self.detector = detector
        self.config = config
        self.scorer = scorer
        self.engine_ = "onnx" if scorer is not None else "torch"
        if scorer is None and config.intra_op_threads is not None:
            import torch

            torch.set_num_threads(int(config.intra_op_threads))

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not found on the wrapper itself.
        if name in ("detector", "config", "scorer", "engine_"):
            raise AttributeError(name)
        return getattr(self.detector, name)

    def __repr__(self) -> str:
        return f"FastDetector({type(self.detector).__name__}, engine={self.engine_!r})"

    # ---- the network -------------------------------------------------------
    def _batches(self, X: pd.DataFrame):
        matrix = self.detector._transform(X)
        source = self.detector._source(X, matrix)
        n, step = len(source), self.config.batch_size
        whole = getattr(source, "X", None) if getattr(self.detector, "mode", "flow") == "flow" else None
        for start in range(0, n, step):
            stop = min(start + step, n)
            # Per-flow input is one contiguous array: a slice is a view, no copy.
            yield whole[start:stop] if whole is not None else source.take(np.arange(start, stop))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        if self.scorer is not None:
            parts = [self.scorer(batch) for batch in self._batches(X)]
        else:
            parts = self._torch_proba(X)
        if not parts:
            return np.zeros((0, len(self.detector.classes_)), np.float32)
        return np.concatenate(parts)

    def _torch_proba(self, X: pd.DataFrame) -> list[np.ndarray]:
        import torch

        module = self.detector.module_.eval()
        with torch.inference_mode():
            return [torch.softmax(module(torch.from_numpy(b)), dim=1).numpy() for b in self._batches(X)]

    # ---- the contract, on top of predict_proba --------------------------------
    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Anomaly score per flow: 1 - P(benign)."""
        return self.detector.scores_from_proba(self.predict_proba(X))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class names: ``Benign`` below ``threshold_``, else the likeliest attack."""
        return self.detector.labels_from_proba(self.predict_proba(X))

    def is_alert(self, X: pd.DataFrame) -> np.ndarray:
        return self.decision_function(X) >= self.detector.threshold_

    def scores_from_proba(self, proba: np.ndarray) -> np.ndarray:
        return self.detector.scores_from_proba(proba)

    def labels_from_proba(self, proba: np.ndarray) -> np.ndarray:
        return self.detector.labels_from_proba(proba)

    def check_columns(self, columns, where: str = "flow table") -> None:
        self.detector.check_columns(columns, where)


def _stored_graph(model_dir: str | Path | None, detector) -> bytes | None:
    """``model.onnx`` from the model directory when it matches the loaded weights."""
    if model_dir is None:
        return None
    path = Path(model_dir) / ONNX_FILE
    if not path.exists():
        log.info("%s has no %s: exporting the network to ONNX now", model_dir, ONNX_FILE)
        return None
    import onnx

    data = path.read_bytes()
    try:
        meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    except Exception as exc:  # a damaged file must not stop scoring: re-export instead
        log.warning("%s: unreadable ONNX graph (%s); exporting the network again", path, exc)
        return None
    if meta.get("flowsentinel.weights_sha256") != state_digest(detector.module_):
        log.warning("%s was exported from other weights than %s holds; exporting the network again", path, model_dir)
        return None
    return data


def fast_detector(detector, config: InferenceConfig = InferenceConfig(), model_dir: str | Path | None = None):
    """The detector to score with under ``config``.

    Deep detectors come back wrapped in a :class:`FastDetector`; detectors
    without a PyTorch network (tree ensembles, other backends) come back as
    they are. With ``model_dir``, a ``model.onnx`` there is used when it was
    exported from the same weights; otherwise the network is exported in
    memory (about a second).
    """
    if _torch_network(detector) is None:
        log.debug("%s has no PyTorch network: scored as it is", type(detector).__name__)
        return detector
    if config.engine == "torch":
        return FastDetector(detector, config)
    try:
        _onnxruntime()
    except ImportError as exc:
        if config.engine == "onnx":
            raise ImportError(
                f"inference engine 'onnx' needs onnxruntime, which cannot be imported ({exc}); "
                "install it with: pip install 'flowsentinel[fast]', or use engine 'torch'"
            ) from exc
        log.info("scoring with PyTorch: onnxruntime cannot be imported (%s); pip install 'flowsentinel[fast]' for the faster engine", exc)
        return FastDetector(detector, config)
    try:
        graph = _stored_graph(model_dir, detector) or export_onnx(detector)
        scorer = OnnxScorer(graph, config)
    except Exception as exc:
        if config.engine == "onnx":
            raise
        log.warning("scoring with PyTorch: the ONNX export or session failed (%s: %s)", type(exc).__name__, exc)
        return FastDetector(detector, config)
    log.info("scoring with ONNX Runtime (%s intra-op threads, batch %d)",
             config.intra_op_threads or "default", config.batch_size)
    return FastDetector(detector, config, scorer)


def load_fast_detector(model_dir: str | Path, config: InferenceConfig = InferenceConfig()):
    """:func:`~flowsentinel.persistence.load_model` followed by :func:`fast_detector`."""
    from ..persistence import load_model

    return fast_detector(load_model(model_dir), config, model_dir)


def max_abs_diff(reference, other, X: pd.DataFrame) -> float:
    """Largest absolute difference between two detectors' class probabilities on ``X``."""
    return float(np.abs(np.asarray(reference.predict_proba(X), np.float64) - np.asarray(other.predict_proba(X), np.float64)).max())
