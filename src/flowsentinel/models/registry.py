"""Every detector by name, for saving, loading, the benchmark and the command line.

>>> sorted(short_names())[:4]
['autoencoder', 'cnn', 'cnn-bilstm', 'cnn-gru']
>>> estimator_classes()["PCADetector"].kind
'unsupervised'
"""

from __future__ import annotations

__all__ = ["estimator_classes", "short_names", "SHORT_NAMES"]

#: Short name (command line, benchmark tables) -> (module, class name), in table order.
SHORT_NAMES: dict[str, tuple[str, str]] = {
    "cnn-bilstm": ("deep", "CNNBiLSTMDetector"),
    "extratrees": ("trees", "ExtraTreesDetector"),
    "randomforest": ("trees", "RandomForestDetector"),
    "lightgbm": ("baselines", "LightGBMDetector"),
    "dnn": ("baselines", "DNNDetector"),
    "cnn": ("baselines", "CNNDetector"),
    "lstm": ("baselines", "LSTMDetector"),
    "cnn-lstm": ("baselines", "CNNLSTMDetector"),
    "cnn-gru": ("baselines", "CNNGRUDetector"),
    "tcn": ("baselines", "TCNDetector"),
    "pca": ("unsupervised", "PCADetector"),
    "isolationforest": ("unsupervised", "IsolationForestDetector"),
    "autoencoder": ("unsupervised", "AutoencoderDetector"),
}


def _load(module: str, name: str) -> type:
    from importlib import import_module

    return getattr(import_module(f"{__package__}.{module}"), name)


def short_names() -> dict[str, type]:
    """Short name -> estimator class, in the order the benchmark reports them."""
    return {short: _load(module, name) for short, (module, name) in SHORT_NAMES.items()}


def estimator_classes() -> dict[str, type]:
    """Estimator class name -> class, for loading saved models."""
    return {cls.__name__: cls for cls in short_names().values()}
