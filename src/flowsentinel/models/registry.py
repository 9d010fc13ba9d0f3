"""Every detector by name, for saving, loading and the command line."""

from __future__ import annotations


def estimator_classes() -> dict[str, type]:
    """Estimator class name -> class, for loading saved models."""
    from .deep import CNNBiLSTMDetector

    return {cls.__name__: cls for cls in (CNNBiLSTMDetector,)}
