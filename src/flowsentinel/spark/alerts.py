"""EVE (or ECS) alert records from scored verdicts, written by the same writer as ``detect``, one partition at a time.

:func:`alert_partition` is handed to ``mapInArrow`` over the alerts of the
verdict table and gives back one text line per record, built by
:class:`~flowsentinel.io.alerts.AlertWriter` exactly as ``detect
--alerts-only`` builds them.

Suppression folds the repeats of an alert per source (and class) within a
window of flow time, in stream order. The job keeps that exact: before the
records are written, the alerts are partitioned by the suppression key (the
file, the source address and, for ``source_class``, the class), so every
alert of one key meets the same suppressor, and sorted by file and line, so
it meets them in the order ``detect`` would. Where each file's flows are in
time order (as exporters write them) the records are those ``detect`` writes
for each file; flows without times are stamped with the clock, in either.

>>> spec = AlertSpec(fmt="jsonl", model_name="m", model_version="1", threshold=0.5, sensor="s")
>>> alert_key_columns(spec, ["IPV4_SRC_ADDR"])
['source_file', 'IPV4_SRC_ADDR', 'predicted_class']
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa

from ..alerting.suppress import SuppressConfig
from ..io.alerts import AlertWriter

__all__ = ["AlertSpec", "alert_partition", "alert_key_columns", "TEXT_COLUMN"]

#: The one column of the records' table (Spark's text writer wants one string column).
TEXT_COLUMN = "value"


@dataclass(frozen=True)
class AlertSpec:
    """The settings of every writer of one job (see :class:`~flowsentinel.io.alerts.AlertWriter`).

    ``sensor`` is resolved on the driver: an executor's host name says
    nothing about where the flows were seen.
    """

    fmt: str
    model_name: str
    model_version: str
    threshold: float
    sensor: str
    community_id_seed: int = 0
    suppress: SuppressConfig = field(default_factory=SuppressConfig)
    truth: bool = False


def alert_key_columns(spec: AlertSpec, columns: Sequence[str]) -> list[str]:
    """The columns whose values one suppressor must see all of: the file, the source, the class."""
    key = ["source_file"]
    if "IPV4_SRC_ADDR" in columns:
        key.append("IPV4_SRC_ADDR")
    if spec.suppress.key == "source_class":
        key.append("predicted_class")
    return key


def _lines(buffer: io.StringIO) -> pa.RecordBatch | None:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    if not text:
        return None
    return pa.RecordBatch.from_arrays([pa.array(text.rstrip("\n").split("\n"), pa.string())], names=[TEXT_COLUMN])


def alert_partition(spec: AlertSpec, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The records of one partition's alerts, in the order they arrive (``mapInArrow``)."""
    buffer = io.StringIO()
    writer = AlertWriter(buffer, spec.fmt, model_name=spec.model_name, model_version=spec.model_version,
                         only_alerts=True, threshold=spec.threshold, sensor=spec.sensor,
                         community_id_seed=spec.community_id_seed, suppress=spec.suppress)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        frame = batch.to_pandas()
        truth = frame["true_class"].to_numpy(dtype=object) if spec.truth else None
        writer.write(frame, frame["score"].to_numpy(dtype="float64"), frame["predicted_class"].to_numpy(dtype=object),
                     np.ones(len(frame), dtype=bool), frame["line"].to_numpy(dtype=np.int64), truth)
        out = _lines(buffer)
        if out is not None:
            yield out
    writer.finish()
    out = _lines(buffer)
    if out is not None:
        yield out
