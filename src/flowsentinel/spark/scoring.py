"""What runs on the executors: a partition's flows checked, scored through ONNX Runtime, turned into verdicts.

:func:`score_partition` is handed to ``DataFrame.mapInArrow``. It takes the
batches of one partition, in file order, and gives back one row per input
row: a verdict (score, class, alert, the flow fields an alert record needs)
for a good row, the file, line, column and reason for a bad one (see
:mod:`flowsentinel.spark.rows`), so that nothing is dropped on the way.

The model is opened once per Python worker process and kept in a
module-level cache keyed by its directory and the digest of its manifest:
Spark reuses its Python workers across tasks (``spark.python.worker.reuse``,
on by default), so a worker loads and checks the model once per job, not
once per partition. The model directory reaches the executors the Spark way
(``SparkContext.addFile``), never as a pickled detector.

>>> spec = ScoreSpec(model_name="m", model_digest="d", kinds={"IN_BYTES": "int"}, flow_columns=("IN_BYTES",),
...                  truth=False, partition_by="source")
>>> [f.split()[0] for f in output_ddl(spec).split(", ")][:6]
['`source_file`', '`line`', '`rejected`', '`score`', '`predicted_class`', '`alert`']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterator, Mapping
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import FlowReadError
from ..schema import ATTACK_COLUMN, TIME_COLUMNS
from .rows import check_rows

__all__ = ["ScoreSpec", "score_partition", "output_ddl", "cached_detector", "LineNumbers", "FILE", "BLOCK",
           "ROW_INDEX", "CORRUPT", "ALERT_COLUMNS", "display_path"]

log = logging.getLogger(__name__)

#: Columns the job adds to what Spark reads: the file, the split's first byte (CSV), the row index (Parquet),
#: and the raw text of a line the CSV parser could not split into the header's fields.
FILE, BLOCK, ROW_INDEX, CORRUPT = "_fs_file", "_fs_block", "_fs_row_index", "_fs_corrupt"
#: The flow columns an alert record reads (:class:`~flowsentinel.alerting.fields.FlowColumns`), where present.
ALERT_COLUMNS = ("IPV4_SRC_ADDR", "L4_SRC_PORT", "IPV4_DST_ADDR", "L4_DST_PORT", "PROTOCOL", "ICMP_TYPE", "L7_PROTO",
                 "IN_BYTES", "OUT_BYTES", "IN_PKTS", "OUT_PKTS", *TIME_COLUMNS)
_SPARK_TYPES = {"int": "BIGINT", "label": "BIGINT", "float": "DOUBLE", "name": "STRING", "text": "STRING",
                "raw": "STRING"}
_ARROW_TYPES = {"BIGINT": pa.int64(), "DOUBLE": pa.float64(), "STRING": pa.string(), "BOOLEAN": pa.bool_()}

#: detectors opened in this Python worker, by (model directory, manifest digest)
_DETECTORS: dict[tuple[str, str], object] = {}


@dataclass(frozen=True)
class ScoreSpec:
    """Everything a partition needs, as plain data (it travels to the executors with the function).

    Attributes:
        model_name: the model directory's name, as shipped with ``SparkContext.addFile``.
        model_digest: its manifest's ``decision_sha256``: a worker's cached model must match it.
        kinds: kind of each column read (:func:`~flowsentinel.spark.rows.column_kinds`).
        flow_columns: the columns of :data:`ALERT_COLUMNS` the input has, kept in the verdicts.
        truth: the input has an ``Attack`` column, kept as ``true_class``.
        partition_by: ``source`` (the file's name) or ``date`` (the flow's UTC day).
        offsets: rows before each CSV split, by (file, first byte); a file absent from it is read whole
            by one task (compressed), so its rows start at 0.
        parquet: the input is Parquet (line = row index + 2, as the reader numbers Parquet rows).
        renames: column names as Spark read them -> as the rules know them (header white space).
        n_file_columns: fields per line in the header (for truncated-line reasons).
        threads: ONNX Runtime threads per worker (Spark runs one worker per core).
        model_dir: where the driver found the model; used where ``SparkFiles`` has no copy (tests).
    """

    model_name: str
    model_digest: str
    kinds: Mapping[str, str]
    flow_columns: tuple[str, ...]
    truth: bool
    partition_by: str
    offsets: Mapping[tuple[str, int], int] = field(default_factory=dict)
    parquet: bool = False
    renames: Mapping[str, str] = field(default_factory=dict)
    n_file_columns: int = 0
    threads: int = 1
    model_dir: str = ""


def output_fields(spec: ScoreSpec) -> list[tuple[str, str]]:
    """(name, Spark SQL type) of every column :func:`score_partition` gives back."""
    fields = [("source_file", "STRING"), ("line", "BIGINT"), ("rejected", "BOOLEAN"), ("score", "DOUBLE"),
              ("predicted_class", "STRING"), ("alert", "BOOLEAN")]
    if spec.truth:
        fields.append(("true_class", "STRING"))
    fields += [(c, _SPARK_TYPES[spec.kinds[c]]) for c in spec.flow_columns]
    fields += [(spec.partition_by, "STRING"), ("reject_column", "STRING"), ("reason", "STRING"),
               ("value", "STRING"), ("row", "STRING")]
    return fields


def output_ddl(spec: ScoreSpec) -> str:
    """The schema of :func:`score_partition`'s output, as Spark DDL."""
    return ", ".join(f"`{name}` {kind}" for name, kind in output_fields(spec))


def display_path(uri: str) -> str:
    """A file as people name it: a local path for ``file:`` URIs, else the URI as it is.

    >>> display_path("file:/tmp/flows%20a.csv"), display_path("s3a://bucket/flows.csv")
    ('/tmp/flows a.csv', 's3a://bucket/flows.csv')
    """
    if uri.startswith("file:"):
        path = uri[len("file:"):]
        while path.startswith("//"):
            path = path[1:]
        return unquote(path)
    return uri


def cached_detector(spec: ScoreSpec):
    """This worker's copy of the model, opened (and its digests checked) on first use."""
    from ..errors import ModelIntegrityError
    from ..models.engines import InferenceConfig
    from ..persistence import load_model

    try:
        from pyspark import SparkFiles

        path = SparkFiles.get(spec.model_name)
    except Exception:  # no SparkContext in this process: a direct call, as in the unit tests
        path = spec.model_dir
    key = (path, spec.model_digest)
    detector = _DETECTORS.get(key)
    if detector is None:
        detector = load_model(path, inference=InferenceConfig(engine="onnx", intra_op_threads=spec.threads))
        if detector.manifest_.get("decision_sha256") != spec.model_digest:
            raise ModelIntegrityError(f"{path}: the model the executor received is not the one the job was "
                                      "started with (its manifest digest differs); restart the job")
        _DETECTORS[key] = detector
        log.info("opened model %s on this worker", path)
    return detector


class LineNumbers:
    """The line of each row in its file, as the flow-file reader numbers them (header = 1).

    Rows reach a task in file order, one split after another; a split of a
    CSV file starts after the rows of the splits before it, which the
    driver counted (``offsets``).

    >>> ln = LineNumbers({("f", 100): 5})
    >>> ln.csv(np.array(["f", "f", "g"], dtype=object), np.array([0, 0, 0])).tolist()
    [2, 3, 2]
    >>> ln.csv(np.array(["f", "f"], dtype=object), np.array([100, 100])).tolist()
    [7, 8]
    """

    def __init__(self, offsets: Mapping[tuple[str, int], int]):
        self.offsets = offsets
        self.seen: dict[tuple[str, int], int] = {}

    def csv(self, files: np.ndarray, blocks: np.ndarray) -> np.ndarray:
        n = len(files)
        out = np.empty(n, dtype=np.int64)
        change = np.flatnonzero((files[1:] != files[:-1]) | (blocks[1:] != blocks[:-1])) + 1
        for start, stop in zip(np.r_[0, change], np.r_[change, n]):
            key = (str(files[start]), int(blocks[start]))
            before = self.seen.get(key)
            if before is None:
                before = self._before(key)
            out[start:stop] = before + np.arange(stop - start) + 2
            self.seen[key] = before + (stop - start)
        return out

    def _before(self, key: tuple[str, int]) -> int:
        if key in self.offsets:
            return int(self.offsets[key])
        if key[1] == 0:
            return 0
        raise FlowReadError(f"{display_path(key[0])}: a part of the file (from byte {key[1]:,}) was not there when "
                            "its rows were counted: was the file changed while the job ran? Run it again")


def _partition_values(spec: ScoreSpec, files: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    if spec.partition_by == "source":
        names = {f: unquote(str(f).rstrip("/").rsplit("/", 1)[-1]) for f in pd.unique(files)}
        return np.asarray([names[f] for f in files], dtype=object)
    when = np.full(len(frame), np.nan)
    for col in TIME_COLUMNS:
        if col in frame.columns:
            t = frame[col].to_numpy(dtype="float64")
            when = np.where(np.isfinite(t) & (t > 0), t, when)
    days = np.full(len(frame), "unknown", dtype=object)
    ok = np.isfinite(when)
    if ok.any():
        days[ok] = np.datetime_as_string(when[ok].astype("datetime64[ms]"), unit="D").astype(object)
    return days


def _batch(spec: ScoreSpec, n: int, columns: dict[str, object]) -> pa.RecordBatch:
    """An output batch of ``n`` rows: the given columns, nulls in the others."""
    arrays = []
    for name, kind in output_fields(spec):
        arrow_type = _ARROW_TYPES[kind]
        value = columns.get(name)
        arrays.append(pa.nulls(n, arrow_type) if value is None else pa.array(value, type=arrow_type, from_pandas=True))
    return pa.RecordBatch.from_arrays(arrays, names=[name for name, _ in output_fields(spec)])


def score_partition(spec: ScoreSpec, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Check, score and describe every row of one partition (``mapInArrow``)."""
    detector = cached_detector(spec)
    lines = LineNumbers(spec.offsets)
    threshold = detector.threshold_
    for batch in batches:
        if batch.num_rows == 0:
            continue
        files = np.asarray(batch.column(FILE).to_numpy(zero_copy_only=False), dtype=object)
        if spec.parquet:
            line = batch.column(ROW_INDEX).to_numpy(zero_copy_only=False).astype(np.int64) + 2
        else:
            line = lines.csv(files, batch.column(BLOCK).to_numpy(zero_copy_only=False))
        data = batch.rename_columns([spec.renames.get(c, c) for c in batch.schema.names])
        checked = check_rows(data, spec.kinds, CORRUPT, spec.n_file_columns)
        codes, uniques = pd.factorize(files)
        shown = np.asarray([display_path(f) for f in uniques], dtype=object)[codes]
        if len(checked.frame):
            frame = checked.frame
            proba = detector.predict_proba(frame)
            scores = detector.scores_from_proba(proba)
            columns: dict[str, object] = {
                "source_file": shown[checked.good], "line": line[checked.good],
                "rejected": np.zeros(len(frame), dtype=bool), "score": scores,
                "predicted_class": np.asarray(detector.labels_from_proba(proba), dtype=object),
                "alert": scores >= threshold,
                spec.partition_by: _partition_values(spec, files[checked.good], frame),
            }
            if spec.truth:
                columns["true_class"] = frame[ATTACK_COLUMN].to_numpy(dtype=object)
            for col in spec.flow_columns:
                columns[col] = frame[col].to_numpy()
            yield _batch(spec, len(frame), columns)
        if len(checked.bad):
            yield _batch(spec, len(checked.bad), {
                "source_file": shown[checked.bad], "line": line[checked.bad],
                "rejected": np.ones(len(checked.bad), dtype=bool), "reject_column": checked.columns,
                "reason": checked.reasons, "value": checked.values, "row": checked.texts})
