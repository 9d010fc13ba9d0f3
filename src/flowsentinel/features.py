"""Turning validated flow tables into model inputs.

The pipeline, fitted on the training split only:

* identifier columns (addresses; ports unless ``include_ports``; the DNS
  query id) are left out: they name hosts and transactions, and a model that
  learns them learns the testbed, not the attack;
* durations that nProbe wrote as 32-bit wrap-arounds (values just below
  2**32 microseconds, i.e. near 4,294,967 ms: a clock that ran backwards)
  are unwrapped to their small distance from the wrap point, with a 0/1
  ``.wrapped`` column beside them, so that the differences between them
  survive scaling;
* counters, sizes, durations and rates are ``log1p``-scaled (they span nine
  orders of magnitude);
* TCP flag fields are decoded into their eight bits (FIN ... CWR);
* optionally (``icmp_fields_icmp_only``), ``ICMP_TYPE``/``ICMP_IPV4_TYPE`` are
  zeroed on flows that are not ICMP, as their definition and a meter have
  them: the NF files carry values there on TCP flows;
* ``PROTOCOL`` and ``L7_PROTO`` are categories, one-hot over the values seen
  most often in training, with one "other" slot for the rest;
* every output column is standardised with the training mean and deviation.

The output keeps the schema's column order (a flag field's bits in place of
the field), so neighbouring inputs stay neighbours for the convolutions.

The fitted state is plain data (:meth:`FeaturePipeline.to_dict`), saved as
JSON beside the model, never pickled.

>>> from flowsentinel.synthetic import generate_flows
>>> flows = generate_flows(200, random_state=0)
>>> pipe = FeaturePipeline().fit(flows)
>>> X = pipe.transform(flows)
>>> X.shape[0], X.dtype.name, X.shape[1] == len(pipe.output_names_)
(200, 'float32', True)
>>> FeaturePipeline.from_dict(pipe.to_dict()).transform(flows).tolist() == X.tolist()
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import ConfigError, MissingColumnsError
from .schema import (
    ADDRESS_COLUMNS,
    ICMP_FIELD_COLUMNS,
    ICMP_PROTOCOLS,
    OPAQUE_ID_COLUMNS,
    PORT_COLUMNS,
    TCP_FLAG_COLUMNS,
    Schema,
    detect_schema,
)

__all__ = ["FeatureConfig", "FeaturePipeline", "MissingColumnsError", "TCP_FLAG_BITS", "input_columns", "make_windows"]

TCP_FLAG_BITS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
ONE_HOT_COLUMNS = ("PROTOCOL", "L7_PROTO")
# Codes and types: numbers that name things; kept as they are (not logged).
_CODE_COLUMNS = frozenset({"ICMP_TYPE", "ICMP_IPV4_TYPE", "DNS_QUERY_TYPE", "FTP_COMMAND_RET_CODE"})
#: Port ranges of ``port_classes``: (label, lowest, highest).
PORT_RANGES = (("none", 0, 0), ("well_known", 1, 1023), ("registered", 1024, 49151), ("dynamic", 49152, 65535))
DURATION_COLUMNS = frozenset({"FLOW_DURATION_MILLISECONDS", "DURATION_IN", "DURATION_OUT"})
#: 2**32 microseconds in milliseconds: where nProbe's duration counter wraps.
WRAP_MS = 4_294_967.296
#: Durations above this are taken as wrapped (about 49.7 days minus 1.2 hours
#: would otherwise be the flow length; flow exporters time out long before).
WRAP_THRESHOLD_MS = 4_290_000.0


@dataclass(frozen=True)
class FeatureConfig:
    """Preprocessing choices.

    Attributes:
        include_ports: keep ``L4_SRC_PORT``/``L4_DST_PORT`` as numeric
            features (default off: ports are identifiers, and the attack
            tools of a testbed pick them in ways real attackers need not).
        port_classes: instead, keep only each port's range, one-hot: 0
            (no port: ICMP), well-known (1-1023), registered (1024-49151),
            dynamic (49152-65535). It says which side offers a service (an
            amplification reply comes *from* a well-known port) without
            naming the service.
        log_scale: ``log1p`` on counters, sizes, durations and rates.
        decode_tcp_flags: expand flag fields into eight 0/1 bits each.
        unwrap_durations: undo nProbe's 32-bit duration wrap-around.
        icmp_fields_icmp_only: zero ``ICMP_TYPE``/``ICMP_IPV4_TYPE`` on
            flows whose ``PROTOCOL`` is not ICMP or ICMPv6, where the NF
            files hold bytes of the packet length (on by default only in
            ``configs/meter.toml``: a meter never writes them there, and
            the published results are on the files as they are).
        max_categories: one-hot slots per categorical column, besides
            "other" (the most frequent training values win).
        exclude: further columns to leave out.
    """

    include_ports: bool = False
    port_classes: bool = False
    log_scale: bool = True
    decode_tcp_flags: bool = True
    unwrap_durations: bool = True
    icmp_fields_icmp_only: bool = False
    max_categories: int = 8
    exclude: tuple[str, ...] = ()


class FeaturePipeline:
    """Fit-on-train, apply-anywhere preprocessing for NetFlow tables."""

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        self.config = config

    # ---- fitting ---------------------------------------------------------
    def fit(self, flows: pd.DataFrame, schema: Schema | None = None) -> "FeaturePipeline":
        schema = schema or detect_schema(list(flows.columns))
        cfg = self.config
        self.schema_ = schema.name
        self.input_columns_ = input_columns(schema, cfg)
        self.categories_: dict[str, list[float]] = {}
        for col in ONE_HOT_COLUMNS:
            if col in self.input_columns_:
                counts = pd.Series(flows[col].to_numpy(dtype="float64")).value_counts()
                self.categories_[col] = [float(v) for v in counts.index[: cfg.max_categories]]
        raw = self._expand(flows)
        self.output_names_ = list(raw.keys())
        matrix = np.column_stack(list(raw.values())).astype("float64")
        self.mean_ = matrix.mean(axis=0)
        std = matrix.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        self.n_features_in_ = len(self.input_columns_)
        self.feature_names_in_ = np.asarray(self.input_columns_, dtype=object)
        return self

    # ---- applying --------------------------------------------------------
    def check_columns(self, columns: Iterable[str], where: str = "flow table") -> None:
        have = set(columns)
        missing = [c for c in self.input_columns_ if c not in have]
        if missing:
            raise MissingColumnsError(
                f"{where}: missing {len(missing)} column(s) the model needs: {', '.join(missing)}"
            )

    def transform(self, flows: pd.DataFrame, where: str = "flow table") -> np.ndarray:
        """Model inputs, shape ``(n_flows, n_outputs)``, float32."""
        self.check_columns(flows.columns, where)
        raw = self._expand(flows)
        # One output column at a time, in float64 as a whole-matrix expression would be (so the
        # float32 result is the same to the bit), written as one row of the transposed output: the
        # temporaries stay one column long instead of four float64 copies of the whole table.
        out = np.empty((len(raw), len(flows)), dtype=np.float32)
        for j, values in enumerate(raw.values()):
            np.divide(np.subtract(values, self.mean_[j], dtype=np.float64), self.scale_[j], out=out[j],
                      casting="same_kind")
        return _transposed(out)

    def _expand(self, flows: pd.DataFrame) -> dict[str, np.ndarray]:
        cfg = self.config
        out: dict[str, np.ndarray] = {}
        # In NF-BoT-IoT-v2, 39,105 TCP flows (17.5% of the shared sample; 28% of
        # DoS, 0.8% of benign) have a nonzero ICMP_TYPE, and for 96% of them
        # ICMP_IPV4_TYPE equals LONGEST_FLOW_PKT mod 256: nProbe read a byte of
        # the packet length, not an ICMP header. A meter writes 0 there.
        not_icmp = None
        if cfg.icmp_fields_icmp_only and ICMP_FIELD_COLUMNS & set(self.input_columns_):
            if "PROTOCOL" not in flows.columns:
                raise MissingColumnsError("icmp_fields_icmp_only needs the PROTOCOL column")
            not_icmp = ~np.isin(flows["PROTOCOL"].to_numpy(dtype="float64"), ICMP_PROTOCOLS)
        for col in self.input_columns_:
            values = flows[col].to_numpy(dtype="float64")
            if not_icmp is not None and col in ICMP_FIELD_COLUMNS:
                values = np.where(not_icmp, 0.0, values)
            if col in PORT_COLUMNS and cfg.port_classes and not cfg.include_ports:
                for label, low, high in PORT_RANGES:
                    out[f"{col}.{label}"] = ((values >= low) & (values <= high)).astype("float64")
            elif col in self.categories_:
                cats = self.categories_[col]
                for c in cats:
                    out[f"{col}={c:g}"] = (values == c).astype("float64")
                out[f"{col}=other"] = (~np.isin(values, cats)).astype("float64")
            elif col in TCP_FLAG_COLUMNS and cfg.decode_tcp_flags:
                ints = values.astype("int64")
                for bit, name in enumerate(TCP_FLAG_BITS):
                    out[f"{col}.{name}"] = ((ints >> bit) & 1).astype("float64")
            elif col in DURATION_COLUMNS and cfg.unwrap_durations:
                wrapped = values >= WRAP_THRESHOLD_MS
                unwrapped = np.where(wrapped, np.maximum(WRAP_MS - values, 0.0), values)
                out[col] = np.log1p(unwrapped) if cfg.log_scale else unwrapped
                out[f"{col}.wrapped"] = wrapped.astype("float64")
            elif col in _CODE_COLUMNS or not cfg.log_scale:
                out[col] = values
            else:
                out[col] = np.log1p(np.maximum(values, 0.0))
        return out

    # ---- persistence -----------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "config": {**asdict(self.config), "exclude": list(self.config.exclude)},
            "schema": self.schema_,
            "input_columns": list(self.input_columns_),
            "categories": self.categories_,
            "output_names": list(self.output_names_),
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeaturePipeline":
        cfg = dict(data["config"])
        cfg["exclude"] = tuple(cfg.get("exclude", ()))
        pipe = cls(FeatureConfig(**cfg))
        pipe.schema_ = data["schema"]
        pipe.input_columns_ = list(data["input_columns"])
        pipe.categories_ = {k: [float(v) for v in vals] for k, vals in data["categories"].items()}
        pipe.output_names_ = list(data["output_names"])
        pipe.mean_ = np.asarray(data["mean"], dtype="float64")
        pipe.scale_ = np.asarray(data["scale"], dtype="float64")
        pipe.n_features_in_ = len(pipe.input_columns_)
        pipe.feature_names_in_ = np.asarray(pipe.input_columns_, dtype=object)
        return pipe


# Columns of the transposed matrix copied at a time: a block of the source (72 rows of 1,024 floats)
# and of the result stay in the CPU caches, where numpy's whole transpose strides across all of
# it (8 against 22 ms for 72 x 100,000 floats on the shared 2-core Xeon).
_TRANSPOSE_BLOCK = 1024


def _transposed(matrix: np.ndarray) -> np.ndarray:
    """``matrix.T`` as a C-contiguous array, copied block by block."""
    rows, cols = matrix.shape
    out = np.empty((cols, rows), dtype=matrix.dtype)
    for start in range(0, cols, _TRANSPOSE_BLOCK):
        out[start:start + _TRANSPOSE_BLOCK] = matrix[:, start:start + _TRANSPOSE_BLOCK].T
    return out


def input_columns(schema: Schema, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """The flow columns a pipeline with ``config`` reads, in schema order.

    >>> from flowsentinel.schema import get_schema
    >>> input_columns(get_schema("v1"))
    ['PROTOCOL', 'L7_PROTO', 'IN_BYTES', 'OUT_BYTES', 'IN_PKTS', 'OUT_PKTS', 'TCP_FLAGS', 'FLOW_DURATION_MILLISECONDS']
    """
    drop = set(ADDRESS_COLUMNS) | set(OPAQUE_ID_COLUMNS) | set(config.exclude)
    if not (config.include_ports or config.port_classes):
        drop |= set(PORT_COLUMNS)
    # Timestamps order flows; as features they would only say when the capture ran.
    drop |= {"FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS"}
    return [c for c in schema.features if c not in drop]


def make_windows(keys: np.ndarray, order: np.ndarray | None, window: int) -> np.ndarray:
    """Index windows for the "time-series reconstruction" of flows.

    For every flow ``i`` the window holds the ``window`` most recent flows of
    the same key (source host by default) up to and including ``i``, oldest
    first, in the order given by ``order`` (a time column) or, without one, in
    table order. Positions before a host's first flow are ``-1`` (padding).
    The window is labelled by its last flow, ``i`` itself.

    Call it on one split at a time: indices only ever point inside the table
    it was given, so no window crosses a train/test boundary. A flow without
    a key (a file without address columns) has no context: its window holds
    itself alone.

    >>> make_windows(np.array(["a", "b", "a", "a"]), None, 3).tolist()
    [[-1, -1, 0], [-1, -1, 1], [-1, 0, 2], [0, 2, 3]]
    >>> make_windows(np.array(["", None, ""], dtype=object), None, 2).tolist()
    [[-1, 0], [-1, 1], [-1, 2]]
    """
    n = len(keys)
    if window < 1:
        raise ConfigError(f"window must be >= 1, got {window}")
    series = pd.Series(keys)
    codes = pd.factorize(series)[0]
    missing = (series.isna() | (series.astype(str).str.strip() == "")).to_numpy()
    if missing.any():
        codes = codes.copy()
        codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    time = np.arange(n) if order is None else np.asarray(order)
    # Stable sort by (key, time, table position).
    perm = np.lexsort((np.arange(n), time, codes))
    sorted_codes = codes[perm]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    pos = np.arange(n)
    result = np.full((n, window), -1, dtype=np.int64)
    for k in range(window):
        back = pos - (window - 1 - k)
        ok = back >= group_start
        result[perm[ok], k] = perm[back[ok]]
    return result
