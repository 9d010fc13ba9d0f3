"""Every detector by name, for the command line, the benchmark, saving and loading.

A short name is either a deep preset (a network name: the one
:class:`~flowsentinel.models.deep.DeepDetector` with that network) or an
estimator class. :func:`make_detector` builds one from flat settings.

>>> list(SHORT_NAMES)[:4]
['cnn-bilstm', 'extratrees', 'randomforest', 'lightgbm']
>>> make_detector("dnn", max_epochs=1).network
'dnn'
>>> estimator_classes()["PCADetector"].kind
'unsupervised'
>>> short_name(make_detector("tcn"))
'tcn'
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..errors import ConfigError

__all__ = ["SHORT_NAMES", "ESTIMATORS", "make_detector", "estimator_classes", "short_name", "detector_class"]

#: Short name -> "module:class" of an estimator, or "deep:<network>" for a deep preset; in table order.
SHORT_NAMES: dict[str, str] = {
    "cnn-bilstm": "deep:cnn-bilstm",
    "extratrees": "trees:ExtraTreesDetector",
    "randomforest": "trees:RandomForestDetector",
    "lightgbm": "boosting:LightGBMDetector",
    "dnn": "deep:dnn",
    "cnn": "deep:cnn",
    "lstm": "deep:lstm",
    "cnn-lstm": "deep:cnn-lstm",
    "cnn-gru": "deep:cnn-gru",
    "tcn": "deep:tcn",
    "pca": "unsupervised:PCADetector",
    "isolationforest": "unsupervised:IsolationForestDetector",
    "autoencoder": "autoencoder:AutoencoderDetector",
}

#: Estimator class name -> module, for loading saved models.
ESTIMATORS: dict[str, str] = {
    "DeepDetector": "deep",
    "ExtraTreesDetector": "trees",
    "RandomForestDetector": "trees",
    "LightGBMDetector": "boosting",
    "PCADetector": "unsupervised",
    "IsolationForestDetector": "unsupervised",
    "AutoencoderDetector": "autoencoder",
}


def detector_class(estimator: str) -> type:
    """An estimator class by its name (``DeepDetector``, ``ExtraTreesDetector`` ...)."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    return getattr(import_module(f"{__package__}.{ESTIMATORS[estimator]}"), estimator)


def estimator_classes() -> dict[str, type]:
    """Estimator class name -> class."""
    return {name: detector_class(name) for name in ESTIMATORS}


def make_detector(name: str, **params: Any):
    """The detector called ``name`` (a short name), from flat settings."""
    if name not in SHORT_NAMES:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(SHORT_NAMES)}")
    module, target = SHORT_NAMES[name].split(":")
    if module == "deep":
        from .deep import preset

        return preset(target, **params)
    cls = getattr(import_module(f"{__package__}.{module}"), target)
    known = set(cls._param_names())
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**params)


def short_name(detector) -> str:
    """The short name a detector goes by in tables."""
    network = getattr(detector, "network", None)
    if type(detector).__name__ == "DeepDetector" and network:
        return network
    for short, target in SHORT_NAMES.items():
        if target.endswith(":" + type(detector).__name__):
            return short
    return type(detector).__name__
