"""The batch-scoring job: flow archives in, verdicts (Parquet), bad rows and EVE alerts out.

:func:`spark_detect` runs on the driver. It

1. opens the model once to check it (digests, probe) and to learn its
   columns, threshold and identity; windowed models are refused (their
   windows need each host's flows in order across partitions);
2. ships the model directory to the executors with ``SparkContext.addFile``;
3. reads the input with Spark's own readers: CSV as text columns (so that
   the row rules see what was written) in ``PERMISSIVE`` mode with a
   corrupt-record column, or Parquet; each file's header must match the
   first's;
4. counts the rows of each split of an uncompressed CSV file (a cheap pass
   that parses no field), so that every row gets its line in its file as
   ``detect`` numbers it; compressed files are read whole by one task and
   need no count;
5. checks and scores each partition (:func:`~flowsentinel.spark.scoring.score_partition`),
   keeps the result (``persist``) and writes from it: ``verdicts/``
   (Parquet, partitioned by source file or by day), ``rejects/`` (CSV:
   source, line, column, reason, value, row, as ``detect``'s rejects file)
   and ``alerts/`` (EVE JSON lines, see :mod:`flowsentinel.spark.alerts`).

Nothing is written to OUTPUT by the driver itself, so OUTPUT can be any
URI the cluster's Hadoop libraries write (``hdfs://``, ``s3a://``, ``abfss://``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Sequence

from .. import errors
from ..alerting.suppress import SuppressConfig
from ..choices import check_choice
from ..errors import ConfigError, FlowReadError, FlowsentinelError, OutputError
from ..schema import ATTACK_COLUMN, TIME_COLUMNS, SchemaError, detect_schema
from ..serving.detect import DetectSummary
from .alerts import TEXT_COLUMN, AlertSpec, alert_key_columns, alert_partition
from .rows import column_kinds
from .scoring import ALERT_COLUMNS, BLOCK, CORRUPT, FILE, ROW_INDEX, ScoreSpec, output_ddl, score_partition

__all__ = ["SparkDetectConfig", "SparkDetectSummary", "spark_detect", "spark_session", "PARTITION_BY", "ALERT_FORMATS",
           "NON_SPLITTABLE"]

log = logging.getLogger(__name__)

#: How the verdict table is partitioned: by the flow's UTC day, by its file's name, or ``auto``
#: (by day where the input has flow times, else by file).
PARTITION_BY = ("auto", "date", "source")
#: Alert record formats (CSV verdicts are the Parquet table).
ALERT_FORMATS = ("jsonl", "ecs")
#: File endings of compressions that Hadoop cannot split: one task reads such a file whole.
NON_SPLITTABLE = (".gz", ".gzip", ".deflate", ".zst", ".lz4", ".snappy", ".br")
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".txt")


@dataclass(frozen=True)
class SparkDetectConfig:
    """One ``spark-detect`` run.

    Attributes:
        inputs: flow files, folders or globs (local paths or any URI the
            cluster reads: ``hdfs://``, ``s3a://`` ...), CSV, CSV.gz or Parquet.
        output: the folder to write ``verdicts/``, ``rejects/`` and ``alerts/`` into.
        model_dir: a saved model directory on the driver (local).
        fmt: alert records: ``jsonl`` (EVE, default) or ``ecs``.
        partition_by: see :data:`PARTITION_BY` (default ``auto``).
        suppress: alert aggregation, as ``detect`` (default: 60 s per source and class).
        sensor: the records' ``host`` (default: the driver's host name).
        community_id_seed: Community ID seed (default 0).
        batch_rows: rows per Arrow batch handed to Python (default 20,000; the
            ONNX session runs them in slices of 1,024 rows, as ``detect`` does).
        threads: ONNX Runtime threads per Python worker (default 1: Spark runs
            one worker per core).
        overwrite: replace what an earlier run wrote under ``output``.
    """

    inputs: tuple[str, ...]
    output: str
    model_dir: str
    fmt: str = "jsonl"
    partition_by: str = "auto"
    suppress: SuppressConfig = field(default_factory=SuppressConfig)
    sensor: str | None = None
    community_id_seed: int = 0
    batch_rows: int = 20_000
    threads: int = 1
    overwrite: bool = False

    def __post_init__(self):
        if not self.inputs:
            raise ConfigError("spark-detect: give at least one input (file, folder or glob)")
        check_choice("format", self.fmt, ALERT_FORMATS)
        check_choice("partition-by", self.partition_by, PARTITION_BY)
        if self.batch_rows < 1:
            raise ConfigError(f"batch rows must be at least 1, got {self.batch_rows}")
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")


@dataclass
class SparkDetectSummary(DetectSummary):
    """What one job did: ``detect``'s summary, and where the records and bad rows went."""

    reasons: dict[str, int] = field(default_factory=dict)
    n_records: int = 0
    n_followups: int = 0
    n_files: int = 0
    output: str = ""
    partition_by: str = ""

    def text(self) -> str:
        return (f"{super().text()}; {self.n_files:,} file(s); {self.n_records:,} alert records "
                f"({self.n_followups:,} follow-ups) in {self.output}/alerts")

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "rejected_by_reason": self.reasons, "n_alert_records": self.n_records,
                "n_followups": self.n_followups, "n_files": self.n_files, "output": self.output,
                "partition_by": self.partition_by}


# ---- the session -------------------------------------------------------------------------------


def spark_session(master: str | None = None, conf: Sequence[tuple[str, str]] = (),
                  app_name: str = "flowsentinel spark-detect"):
    """The active Spark session, or a new one (``master`` default: ``spark-submit``'s, else ``local[*]``)."""
    # pyspark warns about pandas 3 whenever it is imported or a map function is declared; the job hands
    # Arrow batches to flowsentinel, which converts them itself, so no pandas path of Spark's is used.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(f"spark-detect needs pyspark ({exc}); install it with: pip install 'flowsentinel[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None and not conf:
        return active
    own_jvm = "PYSPARK_GATEWAY_PORT" not in os.environ  # spark-submit starts the JVM and hands its port over
    if own_jvm:
        if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
            raise ConfigError("spark-detect needs Java 17 or later: install it (Debian: default-jre-headless) or set "
                              "JAVA_HOME")
    local = own_jvm and (master is None or master.startswith("local"))
    if local:
        # Local Python workers must be this interpreter, with flowsentinel and its libraries.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    settings = {"spark.ui.showConsoleProgress": "false", "spark.sql.session.timeZone": "UTC"}
    if local:
        # ... and find this flowsentinel, however this process found it (a source checkout on sys.path).
        settings["spark.executorEnv.PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    settings.update(dict(conf))
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: its launcher says why on stderr
        raise ConfigError(f"spark-detect: Spark did not start ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


@contextmanager
def _user_errors(where: str) -> Iterator[None]:
    """Errors raised on executors come back wrapped by Spark: give the user's ones back as they were."""
    try:
        yield
    except FlowsentinelError:
        raise
    except Exception as exc:
        text = str(exc)
        found = re.findall(r"flowsentinel\.errors\.(\w+): ([^\n]+)", text)
        if found:
            name, message = found[-1]
            cls = getattr(errors, name, None)
            if isinstance(cls, type) and issubclass(cls, FlowsentinelError):
                raise cls(message.strip()) from None
        header = re.search(r"CSV header does not conform to the schema.*?CSV file: (\S+)", text, re.S)
        if header:
            raise FlowReadError(f"{header.group(1)}: its header differs from the first file's; score files of one "
                                "NF schema and column order together") from None
        missing = re.search(r"\[PATH_NOT_FOUND\][^\n]*", text)
        if missing:
            raise FlowReadError(f"{where}: {missing.group(0)}") from None
        raise


# ---- input files and output folders ----------------------------------------------------------------


def _hadoop(spark, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def _visible(name: str) -> bool:
    return not name.startswith(("_", "."))


def input_files(spark, inputs: Sequence[str]) -> list[str]:
    """Every data file of the inputs (files, folders searched recursively, globs), in a stable order."""
    files: list[str] = []
    for given in inputs:
        path, fs = _hadoop(spark, given)
        statuses = fs.globStatus(path)
        if not statuses:
            raise FlowReadError(f"{given}: no such file or folder")
        for status in statuses:
            if status.isDirectory():
                found = fs.listFiles(status.getPath(), True)
                while found.hasNext():
                    entry = found.next()
                    if _visible(entry.getPath().getName()):
                        files.append(entry.getPath().toString())
            elif _visible(status.getPath().getName()):
                files.append(status.getPath().toString())
    if not files:
        raise FlowReadError(f"{', '.join(inputs)}: no flow files there")
    return sorted(dict.fromkeys(files))


def input_format(files: Sequence[str]) -> str:
    """``csv`` or ``parquet``, by the files' names; one job reads one format.

    >>> input_format(["a.csv.gz", "b.csv"]), input_format(["x/part-0.parquet"])
    ('csv', 'parquet')
    """
    kinds = set()
    for name in files:
        lower = name.lower()
        for ending in NON_SPLITTABLE:
            if lower.endswith(ending):
                lower = lower[: -len(ending)]
                break
        if lower.endswith(_PARQUET):
            kinds.add("parquet")
        elif lower.endswith(_CSV):
            kinds.add("csv")
        else:
            raise FlowReadError(f"{name}: unknown flow file type; expected .csv, .csv.gz or .parquet")
    if len(kinds) > 1:
        raise FlowReadError("the inputs mix CSV and Parquet files: score each format in its own job")
    return kinds.pop()


def _prepare_output(spark, output: str, overwrite: bool) -> None:
    for part in ("verdicts", "rejects", "alerts"):
        path, fs = _hadoop(spark, f"{output.rstrip('/')}/{part}")
        if fs.exists(path):
            if not overwrite:
                raise OutputError(f"{output}/{part}: already exists (from an earlier run?); choose another OUTPUT "
                                  "or pass --overwrite")
            fs.delete(path, True)


_SHIPPED: dict[str, str] = {}


def _ship_model(spark, model_dir: Path, digest: str) -> str:
    """Give the executors a copy of the model directory; returns the name ``SparkFiles.get`` knows it by.

    The copy is named after the model's digest: ``addFile`` keys files by
    name, and two models called ``model`` must not meet in one session.
    """
    name = f"flowsentinel-model-{digest[:16]}"
    key = f"{spark.sparkContext.applicationId}/{name}"  # a new session has none of an old one's files
    if key not in _SHIPPED:
        copy = Path(tempfile.mkdtemp(prefix="flowsentinel-spark-")) / name
        shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("report"))
        spark.sparkContext.addFile(str(copy), recursive=True)
        _SHIPPED[key] = str(copy)
    return name


# ---- the job ---------------------------------------------------------------------------------------------


def _csv_reader(spark, schema):
    return (spark.read.schema(schema)
            .options(header=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT, enforceSchema=False,
                     multiLine=False))


def _read_csv(spark, files: list[str]):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    header = spark.read.option("header", True).csv(files[0]).columns
    schema = T.StructType([T.StructField(c, T.StringType()) for c in header] + [T.StructField(CORRUPT, T.StringType())])
    frame = _csv_reader(spark, schema).csv(files).select(
        *[F.col(f"`{c}`") for c in header], F.col(CORRUPT),
        F.col("_metadata.file_path").alias(FILE), F.col("_metadata.file_block_start").alias(BLOCK))
    splittable = [f for f in files if not f.lower().endswith(NON_SPLITTABLE)]
    offsets: dict[tuple[str, int], int] = {}
    if splittable:
        # Only the line splitting runs here: no field is parsed when none is asked for.
        counts = (_csv_reader(spark, schema).csv(splittable)
                  .select(F.col("_metadata.file_path").alias("f"), F.col("_metadata.file_block_start").alias("b"))
                  .groupBy("f", "b").count().collect())
        by_file: dict[str, list[tuple[int, int]]] = {}
        for row in counts:
            by_file.setdefault(row["f"], []).append((int(row["b"]), int(row["count"])))
        for name, blocks in by_file.items():
            before = 0
            for start, n in sorted(blocks):
                offsets[(name, start)] = before
                before += n
    return frame, header, offsets


def _read_parquet(spark, files: list[str]):
    from pyspark.sql import functions as F

    frame = spark.read.parquet(*files)
    header = list(frame.columns)
    frame = frame.select(*[F.col(f"`{c}`") for c in header], F.col("_metadata.file_path").alias(FILE),
                         F.col("_metadata.row_index").alias(ROW_INDEX))
    return frame, header


def _check_parquet_types(frame, kinds: dict[str, str], renames: dict[str, str]) -> None:
    from pyspark.sql import types as T

    numeric = (T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.DoubleType, T.FloatType, T.DecimalType,
               T.StringType)
    for f in frame.schema.fields:
        kind = kinds.get(renames.get(f.name, f.name))
        if kind in ("int", "float", "label") and not isinstance(f.dataType, numeric):
            raise FlowReadError(f"column {f.name}: its Parquet type is {f.dataType.simpleString()}, not numbers")


def _model(model_dir: str):
    from ..models.engines import InferenceConfig
    from ..persistence import load_model
    from ..serving.detect import model_identity

    detector = load_model(model_dir, inference=InferenceConfig(engine="onnx", intra_op_threads=1))
    if getattr(detector, "mode", "flow") == "window":
        raise ConfigError(f"{model_dir}: a windowed model needs each host's flows in order, which spark-detect does "
                          "not gather across partitions; score its files with 'flowsentinel detect'")
    name, version = model_identity(detector)
    return detector, name, version


def _partition_by(config: SparkDetectConfig, columns: Sequence[str]) -> str:
    has_time = any(c in columns for c in TIME_COLUMNS)
    if config.partition_by == "auto":
        return "date" if has_time else "source"
    if config.partition_by == "date" and not has_time:
        raise ConfigError(f"--partition-by date needs flow times ({', '.join(TIME_COLUMNS)}), which the input lacks; "
                          "use --partition-by source")
    return config.partition_by


def _check_names(files: Sequence[str]) -> None:
    """Verdicts partitioned by file name need names that tell the files apart."""
    seen: dict[str, str] = {}
    for f in files:
        name = f.rstrip("/").rsplit("/", 1)[-1]
        if name in seen:
            raise ConfigError(f"{seen[name]} and {f} have the same name, which the verdicts are partitioned by; "
                              "rename one, or use --partition-by date")
        seen[name] = f


def spark_detect(spark, config: SparkDetectConfig) -> SparkDetectSummary:
    """Score every flow of the inputs and write verdicts, bad rows and alert records under ``config.output``."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    detector, name, version = _model(config.model_dir)
    out = config.output.rstrip("/")
    where = ", ".join(config.inputs)
    with _user_errors(where):
        files = input_files(spark, config.inputs)
        fmt = input_format(files)
        _prepare_output(spark, out, config.overwrite)
        if fmt == "csv":
            frame, header, offsets = _read_csv(spark, files)
        else:
            (frame, header), offsets = _read_parquet(spark, files), {}
    renames = {c: c.strip() for c in header if c != c.strip()}
    columns = [c.strip() for c in header]
    try:
        schema = detect_schema(columns, where=files[0])
    except SchemaError as exc:
        raise FlowReadError(str(exc)) from None
    detector.check_columns(columns, files[0])
    kinds = column_kinds(schema, columns)
    if fmt == "parquet":
        _check_parquet_types(frame, kinds, renames)
    partition_by = _partition_by(config, columns)
    if partition_by == "source":
        _check_names(files)
    truth = ATTACK_COLUMN in columns
    spec = ScoreSpec(model_name=_ship_model(spark, Path(config.model_dir), detector.manifest_["decision_sha256"]),
                     model_digest=detector.manifest_["decision_sha256"], kinds=kinds,
                     flow_columns=tuple(c for c in ALERT_COLUMNS if c in columns), truth=truth,
                     partition_by=partition_by, offsets=offsets, parquet=fmt == "parquet", renames=renames,
                     n_file_columns=len(header), threads=config.threads, model_dir=str(config.model_dir))
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.batch_rows))
    scored = frame.mapInArrow(partial(score_partition, spec), output_ddl(spec)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with _user_errors(where):
            good = scored.where(~F.col("rejected"))
            keep = ["source_file", "line", "score", "predicted_class", "alert", *(["true_class"] if truth else []),
                    *spec.flow_columns, partition_by]
            good.select(*keep).write.partitionBy(partition_by).parquet(f"{out}/verdicts")
            (scored.where(F.col("rejected"))
             .select(F.col("source_file").alias("source"), "line", F.col("reject_column").alias("column"), "reason",
                     "value", "row")
             .write.option("header", True).csv(f"{out}/rejects"))
            alert_spec = AlertSpec(fmt=config.fmt, model_name=name, model_version=version,
                                   threshold=float(detector.threshold_),
                                   sensor=config.sensor if config.sensor is not None else socket.gethostname(),
                                   community_id_seed=config.community_id_seed, suppress=config.suppress, truth=truth)
            alerts = good.where(F.col("alert"))
            if config.suppress.enabled:
                alerts = (alerts.repartition(*alert_key_columns(alert_spec, spec.flow_columns))
                          .sortWithinPartitions("source_file", "line"))
            (alerts.mapInArrow(partial(alert_partition, alert_spec), f"{TEXT_COLUMN} STRING")
             .write.option("compression", "none").text(f"{out}/alerts"))
            summary = _summary(spark, scored, out)
    finally:
        scored.unpersist()
    summary.n_files = len(files)
    summary.partition_by = partition_by
    summary.seconds = time.perf_counter() - t0
    log.info("spark-detect: %s", summary.text())
    return summary


def _summary(spark, scored, out: str) -> SparkDetectSummary:
    from pyspark.sql import functions as F

    summary = SparkDetectSummary(output=out)
    for row in scored.groupBy("rejected", "alert", "predicted_class", "reason").count().collect():
        n = int(row["count"])
        if row["rejected"]:
            summary.n_rejected += n
            summary.rejects_path = f"{out}/rejects"
            summary.reasons[row["reason"]] = summary.reasons.get(row["reason"], 0) + n
            continue
        summary.n_flows += n
        if row["alert"]:
            summary.n_alerts += n
            summary.by_class[row["predicted_class"]] = summary.by_class.get(row["predicted_class"], 0) + n
    records = spark.read.text(f"{out}/alerts")
    counted = records.agg(F.count("*").alias("n"),
                          F.sum(F.col(TEXT_COLUMN).contains('"aggregate":{').cast("long")).alias("followups")).first()
    summary.n_records = int(counted["n"] or 0)
    summary.n_followups = int(counted["followups"] or 0)
    return summary
