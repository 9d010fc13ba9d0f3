"""flowsentinel: CNN-BiLSTM network intrusion detection over NetFlow records.

The package reads NF (v1/v2/v3) flow tables, turns them into features, trains
and evaluates detectors, and writes alerts. The version comes from the
installed package metadata (one place: ``pyproject.toml``).
"""

__all__ = ["__version__"]


def __getattr__(name: str):
    # The version is read on first use: importing importlib.metadata costs a
    # scoring process's start-up about 0.1 s, and scoring never needs it.
    if name == "__version__":
        from importlib import metadata

        try:
            version = metadata.version("flowsentinel")
        except metadata.PackageNotFoundError:  # running from a source tree without install
            version = "0+unknown"
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
