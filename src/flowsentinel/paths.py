"""Where flowsentinel finds things: the shared data folder and the package's own files.

Paths come from a setting or from the location of the source checkout,
never from the current directory, so that a command gives the same answer
wherever it is run.

* The data folder is ``$FLOWSENTINEL_DATA`` when set; otherwise
  ``../shared/data`` beside the checkout that holds this package (the
  layout every developer and CI has). An installed copy outside a checkout
  has no default: set the variable.
* Files that ship inside the package (the synthetic-flow profile, the class
  taxonomy, the default model) are read with :func:`package_file`.

>>> data_dir().name == "data" or DATA_ENV in os.environ
True
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["DATA_ENV", "SHIPPED_MODELS", "checkout_root", "data_dir", "data_file", "package_file", "shipped_model_dir"]

log = logging.getLogger(__name__)

#: The setting that names the data folder.
DATA_ENV = "FLOWSENTINEL_DATA"

_PACKAGE = Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout this package runs from (``src/flowsentinel`` inside it), or ``None``."""
    root = _PACKAGE.parents[1]
    if _PACKAGE.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def data_dir() -> Path:
    """The shared data folder: ``$FLOWSENTINEL_DATA``, else ``../shared/data`` beside the checkout.

    The folder may not exist; callers check, and say how to set it.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    root = checkout_root()
    if root is not None:
        return root.parent / "shared" / "data"
    # Installed outside a checkout: no folder is implied; this path never exists by accident.
    return _PACKAGE / "data" / "no-shared-data"


def data_file(relative: str | os.PathLike) -> Path | None:
    """A file under the data folder, or ``None`` when it is not there."""
    path = data_dir() / relative
    return path if path.exists() else None


def package_file(relative: str | os.PathLike) -> Path:
    """A file shipped inside the package (``src/flowsentinel/data/...``)."""
    return _PACKAGE / "data" / relative


#: The models that ship inside the package, by name (docs/model-card.md): ``default`` reads the columns
#: of the meter and of NF files; ``exporter`` only what a plain NetFlow/IPFIX exporter sends.
SHIPPED_MODELS = ("default", "exporter")


def shipped_model_dir(name: str = "default") -> Path:
    """A model that ships inside the package (``docs/model-card.md``); ``--model-dir`` defaults to one."""
    path = package_file(f"models/{name}")
    if not (path / "manifest.json").is_file():
        from .errors import ModelLoadError

        raise ModelLoadError(f"{path}: this install carries no shipped {name!r} model; pass --model-dir DIR, or "
                             f"build it with bash scripts/build_default_model.sh {name}")
    return path
