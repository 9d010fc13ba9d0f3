"""Reading NetFlow flow files: CSV, gzip-compressed CSV and Parquet.

Files are read in chunks so that a dataset larger than memory (the full
NF-UQ-NIDS-v2 has 75 M flows) can be streamed. Every row is validated against
the schema recognised from the header. A row that is truncated, has a value
of the wrong type, NaN, infinity or a negative counter is never silently
dropped: it is written to a rejects file with the line number, column and
reason, and counted in the :class:`ReadReport`.

>>> import io, tempfile, pathlib
>>> from flowsentinel.schema import V1_FEATURES
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> header = ",".join(V1_FEATURES + ["Label", "Attack"])
>>> good = "10.0.0.1,1234,10.0.0.2,80,6,7.0,100,50,2,1,22,0,0,Benign"
>>> bad = "10.0.0.1,1234,10.0.0.2,80,6,7.0,-5,50,2,1,22,0,0,Benign"
>>> _ = (d / "f.csv").write_text("\\n".join([header, good, bad]) + "\\n")
>>> frame, report = read_flows(d / "f.csv")
>>> len(frame), report.n_rejected, report.reasons
(1, 1, {'negative value': 1})
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..errors import FlowReadError
from ..schema import (
    ATTACK_COLUMN,
    DATASET_COLUMN,
    LABEL_COLUMN,
    Schema,
    SchemaError,
    detect_schema,
    get_schema,
)

__all__ = ["FlowReadError", "ReadConfig", "ReadReport", "FlowReader", "read_flows", "read_header"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadConfig:
    """How flow files are read.

    Attributes:
        chunk_rows: rows per chunk yielded by :class:`FlowReader` (about
            200k rows of v2 is ~80 MB in memory).
        require_labels: the ``Label`` and ``Attack`` columns must be present
            (training, evaluation); detection does not need them.
        schema: force a schema (``v1``/``v2``/``v3``) instead of recognising
            it from the header; a v2 file read as ``v1`` keeps only v1 columns.
        rejects_path: where rejected rows go; default ``<file>.rejects.csv``
            beside the input, or in ``rejects_dir`` if that is set.
        rejects_dir: folder for rejects files when ``rejects_path`` is unset.
        line_column: if set, each chunk gets a column of this name holding
            the row's line number in the file (for alerts that point back).
    """

    chunk_rows: int = 200_000
    require_labels: bool = True
    schema: str | None = None
    rejects_path: Path | None = None
    rejects_dir: Path | None = None
    line_column: str | None = None


@dataclass
class ReadReport:
    """What happened while reading one file."""

    path: str
    schema: str = ""
    n_rows: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejects_path: str | None = None

    def summary(self) -> str:
        text = f"{self.path}: {self.n_accepted:,} flows read ({self.schema})"
        if self.n_rejected:
            why = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.reasons.items()))
            text += f", {self.n_rejected:,} rejected ({why}) -> {self.rejects_path}"
        return text


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".csv.gzip", ".gz", ".txt")):
        return "csv"
    raise FlowReadError(f"{path}: unknown flow file type; expected .csv, .csv.gz or .parquet")


def read_header(path: str | Path) -> list[str]:
    """Column names of a flow file, without reading its rows."""
    path = Path(path)
    if not path.exists():
        raise FlowReadError(f"{path}: no such file")
    try:
        if _format(path) == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        import gzip

        opener = gzip.open if path.name.lower().endswith((".gz", ".gzip")) else open
        with opener(path, "rt", newline="") as fh:
            first = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise FlowReadError(f"{path}: cannot read header: {exc}") from None
    if not first.strip():
        raise FlowReadError(f"{path}: empty file, expected a header line of NetFlow column names")
    return [c.strip() for c in next(csv.reader([first]))]


class _Rejects:
    """Collects rejected rows and writes them to one CSV file, lazily."""

    def __init__(self, path: Path, source: str):
        self.path = path
        self.source = source
        self.reasons: Counter[str] = Counter()
        self.n = 0
        self._fh = None
        self._writer = None

    def add(self, line: int, column: str, reason: str, value: str, text: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="")
            self._writer = csv.writer(self._fh)
            self._writer.writerow(["source", "line", "column", "reason", "value", "row"])
        self._writer.writerow([self.source, line, column, reason, value, text])
        self.reasons[reason] += 1
        self.n += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class FlowReader:
    """Iterate over validated chunks (DataFrames) of a flow file.

    After iteration, :attr:`report` says how many rows were read and rejected.
    Columns beyond the schema (timestamps from a flow meter, ``FLOW_ID``...)
    are passed through as read.
    """

    def __init__(self, path: str | Path, config: ReadConfig = ReadConfig()):
        self.path = Path(path)
        self.config = config
        self.columns = read_header(self.path)
        where = str(self.path)
        try:
            self.schema: Schema = (
                get_schema(config.schema) if config.schema else detect_schema(self.columns, where=where)
            )
        except SchemaError as exc:
            raise FlowReadError(str(exc)) from None
        missing = self.schema.missing(self.columns)
        if missing:
            raise FlowReadError(f"{where}: missing {self.schema.name} column(s): {', '.join(missing)}")
        if config.require_labels:
            absent = [c for c in (LABEL_COLUMN, ATTACK_COLUMN) if c not in self.columns]
            if absent:
                raise FlowReadError(
                    f"{where}: missing label column(s) {', '.join(absent)}; training and evaluation need "
                    "'Label' (0/1) and 'Attack' (class name)"
                )
        if config.rejects_path is not None:
            rejects = Path(config.rejects_path)
        else:
            base = Path(config.rejects_dir) if config.rejects_dir else self.path.parent
            rejects = base / (self.path.name.split(".")[0] + ".rejects.csv")
        self._rejects_path = rejects
        self.report = ReadReport(path=str(self.path), schema=self.schema.name)

    # Columns kept: schema features, labels, and any extra columns of the file.
    def _kept_columns(self) -> list[str]:
        keep = list(self.schema.features)
        extra = [c for c in self.columns if c not in keep]
        if self.config.schema:
            # A forced narrower schema keeps labels and time columns only.
            extra = [c for c in extra if c in (LABEL_COLUMN, ATTACK_COLUMN, DATASET_COLUMN) or "MILLISECONDS" in c]
        return keep + extra

    def __iter__(self) -> Iterator[pd.DataFrame]:
        rejects = _Rejects(self._rejects_path, str(self.path))
        try:
            if _format(self.path) == "parquet":
                yield from self._iter_parquet(rejects)
            else:
                yield from self._iter_csv(rejects)
        finally:
            rejects.close()
            self.report.n_rejected = rejects.n
            self.report.reasons = dict(rejects.reasons)
            self.report.rejects_path = str(rejects.path) if rejects.n else None
            if rejects.n:
                log.warning("%s", self.report.summary())

    def _iter_csv(self, rejects: _Rejects) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        skipped: list[int] = []  # 0-based data-row indices of structurally bad lines
        n_cols = len(self.columns)

        def on_invalid(row) -> str:
            # row.number is the 1-based line number in the file (header = 1)
            line = row.number if row.number is not None else -1
            skipped.append(line - 2)
            if row.actual_columns < row.expected_columns:
                reason = "truncated line"
            else:
                reason = "too many fields"
            rejects.add(line, "", reason, f"{row.actual_columns} of {n_cols} fields", row.text)
            return "skip"

        kept = self._kept_columns()
        try:
            reader = pacsv.open_csv(
                str(self.path),
                read_options=pacsv.ReadOptions(use_threads=False, block_size=1 << 22),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in self.columns},
                    include_columns=kept,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            hint = " (the file looks cut short: re-copy or re-download it)" if "runcated" in str(exc) else ""
            raise FlowReadError(f"{self.path}: cannot read as CSV: {exc}{hint}") from None

        n_kept = 0
        pending = pd.DataFrame()
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError, EOFError) as exc:
                # A gzip stream cut short or an unreadable block: keep what was read.
                rejects.add(-1, "", "unreadable data", "", str(exc)[:200])
                log.error("%s: stopped reading after %d rows: %s", self.path, n_kept, exc)
                break
            raw = batch.to_pandas()
            # Map each kept row back to its line number in the file.
            idx = np.arange(n_kept, n_kept + len(raw))
            if skipped:
                s = np.sort(np.asarray(skipped))
                shift = np.searchsorted(s - np.arange(len(s)), idx, side="right")
                rows = idx + shift
            else:
                rows = idx
            n_kept += len(raw)
            chunk = self._validate(raw, rows + 2, rejects)
            pending = chunk if pending.empty else pd.concat([pending, chunk], ignore_index=True)
            while len(pending) >= self.config.chunk_rows:
                out, pending = pending.iloc[: self.config.chunk_rows], pending.iloc[self.config.chunk_rows :]
                yield out.reset_index(drop=True)
        self.report.n_rows = n_kept + len(skipped)
        if not pending.empty:
            yield pending.reset_index(drop=True)

    def _iter_parquet(self, rejects: _Rejects) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise FlowReadError(f"{self.path}: cannot read as Parquet: {exc}") from None
        start = 0
        for batch in pf.iter_batches(batch_size=self.config.chunk_rows, columns=self._kept_columns()):
            raw = batch.to_pandas()
            # Parquet has no text lines; "line" is the 1-based row number + 1 (as if a header).
            rows = np.arange(start, start + len(raw)) + 2
            start += len(raw)
            yield self._validate(raw, rows, rejects)
        self.report.n_rows = start

    def _validate(self, raw: pd.DataFrame, lines: np.ndarray, rejects: _Rejects) -> pd.DataFrame:
        """Type-convert and check one chunk; bad rows go to ``rejects``."""
        schema = self.schema
        n = len(raw)
        bad = np.zeros(n, dtype=bool)
        out: dict[str, pd.Series | np.ndarray] = {}
        problems: list[tuple[np.ndarray, str, str]] = []
        check = list(schema.numeric_features)
        if LABEL_COLUMN in raw.columns:
            check.append(LABEL_COLUMN)
        for col in raw.columns:
            series = raw[col]
            if col not in check:
                if col in schema.features or col in (ATTACK_COLUMN, DATASET_COLUMN):
                    text = series.astype(str).str.strip()
                    empty = (text == "").to_numpy()
                    if col == ATTACK_COLUMN and empty.any():
                        problems.append((empty, col, "missing value"))
                    out[col] = text
                else:
                    out[col] = series
                continue
            if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
                text = series.astype(str).str.strip()
                values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                lowered = text.str.lower()
                is_nan_text = lowered.isin(["nan", "-nan", "+nan"]).to_numpy()
                empty = (text == "").to_numpy()
                not_number = np.isnan(values) & ~is_nan_text & ~empty
                problems.append((empty, col, "missing value"))
                problems.append((not_number, col, "not a number"))
                problems.append((is_nan_text, col, "NaN"))
            else:
                values = series.to_numpy(dtype="float64", na_value=np.nan)
                problems.append((np.isnan(values), col, "NaN"))
            problems.append((np.isinf(values), col, "infinity"))
            with np.errstate(invalid="ignore"):
                problems.append((values < 0, col, "negative value"))
                if col == LABEL_COLUMN:
                    problems.append(((values != 0) & (values != 1) & np.isfinite(values), col, "label not 0 or 1"))
            out[col] = values
        # Each bad row is written once, with the first problem found.
        for mask, col, reason in problems:
            new = mask & ~bad
            if new.any():
                for i in np.flatnonzero(new):
                    text = ",".join(str(v) for v in raw.iloc[i].tolist())
                    rejects.add(int(lines[i]), col, reason, str(raw[col].iloc[i]), text)
                bad |= new
        keep = ~bad
        frame = pd.DataFrame({c: (v[keep] if isinstance(v, np.ndarray) else v[keep].to_numpy()) for c, v in out.items()})
        for col in frame.columns:
            if col in check:
                kind = schema.dtype(col) if col != LABEL_COLUMN else "int64"
                if kind == "int64":
                    vals = frame[col].to_numpy()
                    # Counters above 2**63 do not occur in these datasets; keep floats exact otherwise.
                    if np.all(np.mod(vals, 1) == 0):
                        frame[col] = vals.astype("int64")
        if self.config.line_column:
            frame[self.config.line_column] = np.asarray(lines)[keep]
        self.report.n_accepted += int(keep.sum())
        return frame


def read_flows(
    path: str | Path, config: ReadConfig = ReadConfig(), *, max_rows: int | None = None
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a whole flow file (or its first ``max_rows`` valid rows) into memory."""
    reader = FlowReader(path, config)
    parts = []
    total = 0
    for chunk in reader:
        parts.append(chunk)
        total += len(chunk)
        if max_rows is not None and total >= max_rows:
            break
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=reader._kept_columns())
    if max_rows is not None:
        frame = frame.iloc[:max_rows].reset_index(drop=True)
    return frame, reader.report
