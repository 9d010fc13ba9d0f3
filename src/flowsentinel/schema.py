"""The NetFlow dataset schemas of the University of Queensland NIDS datasets.

Three generations share one naming scheme (nProbe's field names):

* **v1** (NF-BoT-IoT, NF-ToN-IoT, ...): 12 features.
* **v2** (NF-*-v2, NF-UQ-NIDS-v2): 43 features.
* **v3** (NF-*-v3): the 43 of v2 plus flow start/end timestamps and
  inter-arrival-time statistics, 53 features.

Every file carries ``Label`` (0 benign, 1 attack) and ``Attack`` (the attack
class name, ``Benign`` for benign flows); the merged NF-UQ-NIDS files add
``Dataset``. The address columns are optional: some published files
(NF-CSE-CIC-IDS2018-v2) leave them out, and no model uses them, so a schema is
recognised from its other (required) feature columns. This module knows those
column sets and nothing else.

>>> detect_schema(V1_FEATURES + ["Label", "Attack"]).name
'v1'
>>> detect_schema(V2_FEATURES + ["Label", "Attack", "Dataset"]).name
'v2'
>>> len(V3_FEATURES)
53
>>> detect_schema([c for c in V2_FEATURES if c not in ADDRESS_COLUMNS]).name
'v2'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from .errors import SchemaError

__all__ = [
    "Schema",
    "SchemaError",
    "SCHEMAS",
    "V1_FEATURES",
    "V2_FEATURES",
    "V3_FEATURES",
    "IDENTIFIER_COLUMNS",
    "PORT_COLUMNS",
    "ADDRESS_COLUMNS",
    "OPTIONAL_COLUMNS",
    "TIME_COLUMNS",
    "LABEL_COLUMN",
    "ATTACK_COLUMN",
    "DATASET_COLUMN",
    "BENIGN_CLASS",
    "detect_schema",
    "get_schema",
]

LABEL_COLUMN = "Label"
ATTACK_COLUMN = "Attack"
DATASET_COLUMN = "Dataset"
BENIGN_CLASS = "Benign"

ADDRESS_COLUMNS = ("IPV4_SRC_ADDR", "IPV4_DST_ADDR")
# Feature columns a file may lack: the addresses identify hosts for alerts and
# windows, but no model takes them as input.
OPTIONAL_COLUMNS = frozenset(ADDRESS_COLUMNS)
PORT_COLUMNS = ("L4_SRC_PORT", "L4_DST_PORT")
IDENTIFIER_COLUMNS = ADDRESS_COLUMNS + PORT_COLUMNS
TIME_COLUMNS = ("FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS")

# The order is the order of the published CSV files.
V1_FEATURES: list[str] = [
    "IPV4_SRC_ADDR",
    "L4_SRC_PORT",
    "IPV4_DST_ADDR",
    "L4_DST_PORT",
    "PROTOCOL",
    "L7_PROTO",
    "IN_BYTES",
    "OUT_BYTES",
    "IN_PKTS",
    "OUT_PKTS",
    "TCP_FLAGS",
    "FLOW_DURATION_MILLISECONDS",
]

V2_FEATURES: list[str] = [
    "IPV4_SRC_ADDR",
    "L4_SRC_PORT",
    "IPV4_DST_ADDR",
    "L4_DST_PORT",
    "PROTOCOL",
    "L7_PROTO",
    "IN_BYTES",
    "IN_PKTS",
    "OUT_BYTES",
    "OUT_PKTS",
    "TCP_FLAGS",
    "CLIENT_TCP_FLAGS",
    "SERVER_TCP_FLAGS",
    "FLOW_DURATION_MILLISECONDS",
    "DURATION_IN",
    "DURATION_OUT",
    "MIN_TTL",
    "MAX_TTL",
    "LONGEST_FLOW_PKT",
    "SHORTEST_FLOW_PKT",
    "MIN_IP_PKT_LEN",
    "MAX_IP_PKT_LEN",
    "SRC_TO_DST_SECOND_BYTES",
    "DST_TO_SRC_SECOND_BYTES",
    "RETRANSMITTED_IN_BYTES",
    "RETRANSMITTED_IN_PKTS",
    "RETRANSMITTED_OUT_BYTES",
    "RETRANSMITTED_OUT_PKTS",
    "SRC_TO_DST_AVG_THROUGHPUT",
    "DST_TO_SRC_AVG_THROUGHPUT",
    "NUM_PKTS_UP_TO_128_BYTES",
    "NUM_PKTS_128_TO_256_BYTES",
    "NUM_PKTS_256_TO_512_BYTES",
    "NUM_PKTS_512_TO_1024_BYTES",
    "NUM_PKTS_1024_TO_1514_BYTES",
    "TCP_WIN_MAX_IN",
    "TCP_WIN_MAX_OUT",
    "ICMP_TYPE",
    "ICMP_IPV4_TYPE",
    "DNS_QUERY_ID",
    "DNS_QUERY_TYPE",
    "DNS_TTL_ANSWER",
    "FTP_COMMAND_RET_CODE",
]

_V3_EXTRA: list[str] = [
    "FLOW_START_MILLISECONDS",
    "FLOW_END_MILLISECONDS",
    "SRC_TO_DST_IAT_MIN",
    "SRC_TO_DST_IAT_MAX",
    "SRC_TO_DST_IAT_AVG",
    "SRC_TO_DST_IAT_STDDEV",
    "DST_TO_SRC_IAT_MIN",
    "DST_TO_SRC_IAT_MAX",
    "DST_TO_SRC_IAT_AVG",
    "DST_TO_SRC_IAT_STDDEV",
]
V3_FEATURES: list[str] = _V3_EXTRA[:2] + V2_FEATURES + _V3_EXTRA[2:]

# Columns that are text, not numbers.
STRING_COLUMNS = frozenset(ADDRESS_COLUMNS)
# Columns whose values may legitimately be fractional (rates, averages, and
# the L7 protocol, which nDPI writes as "master.app" e.g. 7.178).
FLOAT_COLUMNS = frozenset(
    {
        "L7_PROTO",
        "SRC_TO_DST_SECOND_BYTES",
        "DST_TO_SRC_SECOND_BYTES",
        "SRC_TO_DST_IAT_AVG",
        "SRC_TO_DST_IAT_STDDEV",
        "DST_TO_SRC_IAT_AVG",
        "DST_TO_SRC_IAT_STDDEV",
    }
)
# Categorical columns: numbers that name things rather than count them.
CATEGORICAL_COLUMNS = frozenset(
    {"PROTOCOL", "L7_PROTO", "ICMP_TYPE", "ICMP_IPV4_TYPE", "DNS_QUERY_TYPE", "FTP_COMMAND_RET_CODE"}
)
# TCP flag fields: a bitmask, decoded into bits by the feature pipeline.
TCP_FLAG_COLUMNS = ("TCP_FLAGS", "CLIENT_TCP_FLAGS", "SERVER_TCP_FLAGS")
# Columns that hold identifiers drawn from a large space rather than
# magnitudes; excluded from features by default like ports.
OPAQUE_ID_COLUMNS = frozenset({"DNS_QUERY_ID"})
# PROTOCOL values (IP protocol numbers) of ICMP and ICMPv6: the only flows whose
# ICMP_TYPE and ICMP_IPV4_TYPE fields are defined.
ICMP_PROTOCOLS = (1, 58)
# The ICMP type fields; defined on ICMP flows only.
ICMP_FIELD_COLUMNS = frozenset({"ICMP_TYPE", "ICMP_IPV4_TYPE"})
# Columns that may not be negative: every numeric column in these datasets is
# a counter, a duration, a size, a code or a timestamp.


@dataclass(frozen=True)
class Schema:
    """One NF dataset generation: its feature columns, in file order."""

    name: str
    features: tuple[str, ...]
    label_columns: tuple[str, ...] = (LABEL_COLUMN, ATTACK_COLUMN)

    @property
    def numeric_features(self) -> tuple[str, ...]:
        return tuple(c for c in self.features if c not in STRING_COLUMNS)

    @property
    def time_column(self) -> str | None:
        """The column that orders flows in time, if this schema has one."""
        return "FLOW_START_MILLISECONDS" if "FLOW_START_MILLISECONDS" in self.features else None

    def dtype(self, column: str) -> str:
        """The dtype a column is read as: ``str``, ``float64`` or ``int64``."""
        if column in STRING_COLUMNS or column in (ATTACK_COLUMN, DATASET_COLUMN):
            return "str"
        if column in FLOAT_COLUMNS:
            return "float64"
        return "int64"

    @property
    def required(self) -> tuple[str, ...]:
        """Feature columns every file of this schema must have (all but :data:`OPTIONAL_COLUMNS`)."""
        return tuple(c for c in self.features if c not in OPTIONAL_COLUMNS)

    def missing(self, columns: Iterable[str]) -> list[str]:
        """Required feature columns of this schema absent from ``columns``.

        >>> SCHEMAS["v1"].missing([c for c in V1_FEATURES if c not in ("IPV4_SRC_ADDR", "IN_BYTES")])
        ['IN_BYTES']
        """
        have = set(columns)
        return [c for c in self.required if c not in have]


SCHEMAS: dict[str, Schema] = {
    "v1": Schema("v1", tuple(V1_FEATURES)),
    "v2": Schema("v2", tuple(V2_FEATURES)),
    "v3": Schema("v3", tuple(V3_FEATURES)),
}


def get_schema(name: str) -> Schema:
    """Look a schema up by name (``v1``, ``v2``, ``v3``)."""
    try:
        return SCHEMAS[name]
    except KeyError:
        raise SchemaError(f"unknown schema {name!r}: expected one of {', '.join(SCHEMAS)}") from None


def detect_schema(columns: Sequence[str], *, where: str = "header") -> Schema:
    """Recognise the schema of a flow table from its column names.

    The richest schema whose required feature columns are all present wins, so
    a v2 file is never mistaken for v1 (whose columns it contains).

    >>> detect_schema(["IPV4_SRC_ADDR", "Label"])
    Traceback (most recent call last):
    ...
    flowsentinel.errors.SchemaError: header: not a NetFlow (NF v1/v2/v3) flow table; closest is v1, missing 10 column(s): L4_SRC_PORT, L4_DST_PORT, PROTOCOL, L7_PROTO, IN_BYTES, ...
    """
    cols = [str(c).strip() for c in columns]
    for name in ("v3", "v2", "v1"):
        if not SCHEMAS[name].missing(cols):
            return SCHEMAS[name]
    # Name the closest schema and what it lacks, so the user can fix the file.
    best = min(SCHEMAS.values(), key=lambda s: (len(s.missing(cols)), len(s.required)))
    missing = best.missing(cols)
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    raise SchemaError(
        f"{where}: not a NetFlow (NF v1/v2/v3) flow table; closest is {best.name}, "
        f"missing {len(missing)} column(s): {shown}"
    )
