"""Other deep-learning frameworks behind the same detector contract.

Each backend module imports its framework only when it is used, so the
default install (PyTorch) never needs it:

* :mod:`flowsentinel.backends.mindspore`: the CNN-BiLSTM in MindSpore
  (``pip install .[mindspore]`` in its own environment), trained and served
  in graph (jit) mode, saving and loading the canonical safetensors layout of
  :class:`~flowsentinel.models.networks.CNNBiLSTMNet`.
"""

BACKENDS = ("torch", "mindspore")

__all__ = ["BACKENDS"]
