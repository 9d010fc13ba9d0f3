"""Weight layout conversion between the canonical (PyTorch state-dict) layout and MindSpore's.

numpy only. The layouts differ in three places:

* convolution weights are ``(out, in, 1, k)`` in MindSpore, ``(out, in, k)``
  in PyTorch;
* batch norm is ``gamma``/``beta``/``moving_mean``/``moving_variance``
  against ``weight``/``bias``/``running_mean``/``running_var`` (and
  MindSpore's momentum is one minus PyTorch's);
* PyTorch's ``num_batches_tracked`` has no MindSpore counterpart and is not
  part of the canonical layout.

MindSpore's ``nn.LSTM`` (CPU) names and orders its weights as PyTorch does
(gates i, f, g, o; separate input and hidden biases), so they pass unchanged;
the parity tests guard that.

>>> import numpy as np
>>> torch_state = {
...     "features.0.conv.weight": np.zeros((32, 1, 3), np.float32),
...     "features.0.bn.running_var": np.ones(32, np.float32),
...     "features.0.bn.num_batches_tracked": np.array(7),
...     "lstm.weight_hh_l0": np.zeros((128, 32), np.float32),
... }
>>> ms_state = torch_layout_to_mindspore(torch_state)
>>> {name: value.shape for name, value in ms_state.items()}
{'features.0.conv.weight': (32, 1, 1, 3), 'features.0.bn.moving_variance': (32,), 'lstm.weight_hh_l0': (128, 32)}
>>> sorted(mindspore_layout_to_torch(ms_state))
['features.0.bn.running_var', 'features.0.conv.weight', 'lstm.weight_hh_l0']
"""

from __future__ import annotations

import re

import numpy as np

from ...errors import DataError

__all__ = ["torch_layout_to_mindspore", "mindspore_layout_to_torch"]

_BLOCK_PARAM = re.compile(r"^(features\.\d+)\.(conv|bn)\.(\w+)$")
_BN_TORCH_TO_MS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_BN_MS_TO_TORCH = {v: k for k, v in _BN_TORCH_TO_MS.items()}


def torch_layout_to_mindspore(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical (PyTorch state-dict) names and shapes -> MindSpore parameter names and shapes.

    ``num_batches_tracked`` entries are dropped. Values are copied, never
    changed: the conversion is exact.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        value = np.asarray(value)
        match = _BLOCK_PARAM.match(name)
        if match:
            block, layer, leaf = match.groups()
            if layer == "bn":
                if leaf not in _BN_TORCH_TO_MS:
                    raise DataError(f"{name}: unknown batch-norm entry {leaf!r} (known: {', '.join(_BN_TORCH_TO_MS)})")
                leaf = _BN_TORCH_TO_MS[leaf]
            elif leaf == "weight":
                if value.ndim != 3:
                    raise DataError(f"{name}: expected a (out, in, kernel) convolution weight, got shape {value.shape}")
                value = value[:, :, None, :]
            name = f"{block}.{layer}.{leaf}"
        out[name] = np.ascontiguousarray(value)
    return out


def mindspore_layout_to_torch(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """MindSpore parameter names and shapes -> the canonical (PyTorch state-dict) layout."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        value = np.asarray(value)
        match = _BLOCK_PARAM.match(name)
        if match:
            block, layer, leaf = match.groups()
            if layer == "bn":
                if leaf not in _BN_MS_TO_TORCH:
                    raise DataError(f"{name}: unknown batch-norm parameter {leaf!r} (known: {', '.join(_BN_MS_TO_TORCH)})")
                leaf = _BN_MS_TO_TORCH[leaf]
            elif leaf == "weight":
                if value.ndim != 4 or value.shape[2] != 1:
                    raise DataError(f"{name}: expected an (out, in, 1, kernel) convolution weight, got shape {value.shape}")
                value = value[:, :, 0, :]
            name = f"{block}.{layer}.{leaf}"
        out[name] = np.ascontiguousarray(value)
    return out
