"""nDPI's protocol names for the ``L7_PROTO`` numbers of NF flows.

The NF datasets and the meter write nDPI's protocol pair as one number,
``master.app`` (``7.178`` is HTTP carrying Amazon, ``91`` is TLS; see
:func:`flowsentinel.metering.plugins.l7_proto_value`). The names come from
``data/ndpi_protocols.json``, a table of nDPI's protocol ids and names taken
from the nDPI that nfstream ships (regenerate with
``python -m flowsentinel.alerting.ndpi``). nDPI keeps ids stable between
releases and only adds new ones, so the table also names the ids of the
older nDPI behind the published NF files.

>>> ndpi_name(7.178), ndpi_name(91.0), ndpi_name(0.0)
('HTTP.Amazon', 'TLS', 'Unknown')
>>> app_protos([7.0, 5.126, 0.0]).tolist()
['http', 'dns', None]
"""

from __future__ import annotations

import json
import logging
import math
from functools import lru_cache

import numpy as np
import pandas as pd

from ..paths import package_file

__all__ = ["ndpi_name", "app_proto_codes", "app_protos", "protocol_names", "split_l7"]

log = logging.getLogger(__name__)

DATA_FILE = "ndpi_protocols.json"


@lru_cache(maxsize=1)
def protocol_names() -> dict[int, str]:
    """nDPI protocol id -> name."""
    data = json.loads(package_file(DATA_FILE).read_text())
    return {int(k): v for k, v in data["protocols"].items()}


def split_l7(value: float) -> tuple[int, int]:
    """``(master, app)`` from an ``L7_PROTO`` value; ``(app, 0)`` when there is one protocol only.

    The fraction holds the app id's digits (``5.126`` -> 5 and 126), so it is
    read back from the number's shortest decimal text, not by arithmetic.

    >>> split_l7(7.178), split_l7(91.0), split_l7(5.12)
    ((7, 178), (91, 0), (5, 12))
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0, 0
    text = repr(float(value))
    whole, _, frac = text.partition(".")
    return int(whole), int(frac) if frac.strip("0") else 0


def ndpi_name(value: float) -> str:
    """nDPI's name for an ``L7_PROTO`` value: ``MASTER.APP`` or ``PROTO``; ``Unknown`` for 0."""
    names = protocol_names()
    master, app = split_l7(value)
    first = names.get(master, f"nDPI-{master}")
    return f"{first}.{names.get(app, f'nDPI-{app}')}" if app else first


def app_protos(values) -> np.ndarray:
    """Suricata-style ``app_proto`` per flow: the master protocol's nDPI name, lowercase.

    ``None`` where nDPI named no protocol (0, or a missing value): Suricata
    leaves ``app_proto`` out for flows whose application layer it did not
    identify, and so does a record built from this.
    """
    codes, table = app_proto_codes(values)
    return table[codes]


def app_proto_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """:func:`app_protos` as codes into a table of names (``None`` entries: no name; one for missing values)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype="float64"), use_na_sentinel=True)
    names = protocol_names()
    mapped = []
    for u in uniques:
        master, _ = split_l7(u)
        mapped.append(names[master].lower() if master and master in names else None)
    return np.where(codes < 0, len(mapped), codes), np.asarray(mapped + [None], dtype=object)


def _names_from_nfstream() -> tuple[str, dict[int, str]]:  # pragma: no cover - run by hand to regenerate
    """nDPI's id -> name table, asked from the nDPI library inside nfstream's engine."""
    import ctypes
    from pathlib import Path

    import nfstream
    from nfstream.engine.engine import create_engine

    ffi, lib = create_engine()
    version = ffi.string(lib.engine_lib_ndpi_version()).decode()
    ids = sorted({getattr(lib, n) for n in dir(lib) if n.startswith("NDPI_PROTOCOL_") and isinstance(getattr(lib, n), int)})
    so = next(Path(nfstream.__file__).resolve().parents[1].glob("_lib_engine*.so"))
    ndpi = ctypes.CDLL(str(so))
    ndpi.ndpi_init_detection_module.restype = ctypes.c_void_p
    ndpi.ndpi_init_detection_module.argtypes = [ctypes.c_void_p]
    ndpi.ndpi_finalize_initialization.argtypes = [ctypes.c_void_p]
    ndpi.ndpi_get_proto_name.restype = ctypes.c_char_p
    ndpi.ndpi_get_proto_name.argtypes = [ctypes.c_void_p, ctypes.c_uint16]
    module = ndpi.ndpi_init_detection_module(None)
    ndpi.ndpi_finalize_initialization(module)
    table = {}
    for i in range(max(ids) + 1):
        name = ndpi.ndpi_get_proto_name(module, i).decode()
        if i == 0 or name != "Unknown":
            table[i] = name
    return version, table


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    version, table = _names_from_nfstream()
    path = package_file(DATA_FILE)
    path.write_text(json.dumps({"source": f"nDPI {version} (as bundled in nfstream)",
                                "protocols": {str(k): v for k, v in table.items()}}, indent=0) + "\n")
    log.info("%d protocol names from nDPI %s written to %s", len(table), version, path)
