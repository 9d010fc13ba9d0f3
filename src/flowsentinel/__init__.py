"""flowsentinel: CNN-BiLSTM network intrusion detection over NetFlow records.

The package reads NF (v1/v2/v3) flow tables, turns them into features, trains
and evaluates detectors, and writes alerts. The version comes from the
installed package metadata (one place: ``pyproject.toml``).
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("flowsentinel")
except _metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
