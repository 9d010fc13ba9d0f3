"""The CNN-BiLSTM in MindSpore: a training backend and an inference engine of the one deep estimator.

Install with ``pip install .[mindspore]`` in its own environment: MindSpore
needs ``numpy<2``, so it cannot share the default one. MindSpore is imported
only when a model is built, trained or loaded here; without it those raise
:class:`MindSporeUnavailableError` saying what to install.

``DeepDetector(network="cnn-bilstm", backend="mindspore")`` trains in
MindSpore; :func:`flowsentinel.persistence.load_model` with
``backend="mindspore"`` scores any CNN-BiLSTM model in MindSpore,
whichever framework trained it. What is shared with the PyTorch backend:

* the estimator: parameters, labels, preprocessing, windowing, class
  weights, the threshold policy, scoring;
* the epoch loop, early stopping, best-epoch checkpoint and progress bar
  (:class:`~flowsentinel.models.loop.Trainer` and its callbacks); only the
  training step and the forward pass are MindSpore's, both compiled in graph
  (jit) mode;
* the initial weights: drawn by PyTorch's initialisers from the same
  ``random_state``, so both backends start from the same network;
* the saved model: the canonical safetensors layout of
  :class:`~flowsentinel.models.networks.CNNBiLSTMNet`
  (:mod:`~flowsentinel.backends.mindspore.layout` converts), with
  ``"backend": "mindspore"`` in the manifest, so either backend loads it.

The package is split by responsibility: :mod:`.layout` (weight layouts,
numpy only), :mod:`.cells` (the MindSpore cells), :mod:`.engine` (weights in
and out, compiled steps, the trainer, the backend and the engine).
"""

from __future__ import annotations

from .cells import INSTALL_HINT, MindSporeUnavailableError, mindspore_module, network_classes
from .engine import (
    MindSporeBackend,
    MindSporeEngine,
    MindSporeTrainer,
    canonical_state,
    copy_into,
    load_canonical_state,
    make_forward,
    make_train_step,
    predict_logits,
)
from .layout import mindspore_layout_to_torch, torch_layout_to_mindspore

__all__ = [
    "INSTALL_HINT",
    "MindSporeUnavailableError",
    "MindSporeBackend",
    "MindSporeEngine",
    "MindSporeTrainer",
    "canonical_state",
    "copy_into",
    "load_canonical_state",
    "make_forward",
    "make_train_step",
    "mindspore_layout_to_torch",
    "mindspore_module",
    "network_classes",
    "predict_logits",
    "torch_layout_to_mindspore",
]
