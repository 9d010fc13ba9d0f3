"""The named networks (presets of the one deep estimator) and their parameters.

:class:`~flowsentinel.models.deep.DeepDetector` takes a network by name and
its settings as ``network_params``; the defaults of those settings are the
network class's own, written once. This module knows the names without
importing torch, so that a process that only scores through ONNX Runtime
never loads it.

>>> list(NETWORKS)
['cnn-bilstm', 'dnn', 'cnn', 'lstm', 'cnn-lstm', 'cnn-gru', 'tcn']
>>> split_params("cnn-bilstm", {"lstm_hidden": 64, "max_epochs": 40})
({'max_epochs': 40}, {'lstm_hidden': 64})
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from importlib import import_module
from typing import Any

from ..errors import ConfigError

__all__ = ["NETWORKS", "network_class", "network_param_names", "network_defaults", "split_params",
           "normalise_network_params"]

#: Network name -> "module:class" under ``flowsentinel.models``, in benchmark order.
NETWORKS: dict[str, str] = {
    "cnn-bilstm": "networks:CNNBiLSTMNet",
    "dnn": "baseline_networks:DNNNet",
    "cnn": "baseline_networks:CNNNet",
    "lstm": "baseline_networks:LSTMNet",
    "cnn-lstm": "baseline_networks:CNNLSTMNet",
    "cnn-gru": "baseline_networks:CNNGRUNet",
    "tcn": "baseline_networks:TCNNet",
}

# Arguments every network takes from the estimator, not from network_params.
_ESTIMATOR_ARGS = ("self", "n_features", "n_classes", "mode", "window")


def _check_name(name: str) -> str:
    if name not in NETWORKS:
        raise ConfigError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    return name


def network_class(name: str) -> type:
    """The ``nn.Module`` class of a named network (imports torch)."""
    module, cls = NETWORKS[_check_name(name)].split(":")
    return getattr(import_module(f"{__package__}.{module}"), cls)


@lru_cache(maxsize=None)
def _signature(name: str) -> dict[str, Any]:
    params = inspect.signature(network_class(name).__init__).parameters
    return {k: p.default for k, p in params.items() if k not in _ESTIMATOR_ARGS}


def network_param_names(name: str) -> list[str]:
    """The settings a named network takes (``conv_channels``, ``lstm_hidden`` ...)."""
    return list(_signature(name))


def network_defaults(name: str) -> dict[str, Any]:
    return dict(_signature(name))


def normalise_network_params(name: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` checked against the network's settings; lists become tuples (as in the signatures)."""
    params = dict(params or {})
    known = _signature(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"network {name!r}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def split_params(network: str, flat: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one flat table of settings (a config's ``[model]``) into estimator and network settings."""
    names = set(network_param_names(network))
    estimator = {k: v for k, v in flat.items() if k not in names}
    net = {k: v for k, v in flat.items() if k in names}
    return estimator, net
