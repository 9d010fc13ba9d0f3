"""Reading NetFlow flow files: CSV, gzip-compressed CSV and Parquet.

Files are read in chunks so that a dataset larger than memory (the full
NF-UQ-NIDS-v2 has 75 M flows) can be streamed. Every row is validated against
the schema recognised from the header. A row that is truncated, has a value
of the wrong type, NaN, infinity, a negative counter or a number too large for
its column is never silently dropped: it is written to a rejects file with the
line number, column and reason, and counted in the :class:`ReadReport`, so
that rows read = rows accepted + rows rejected, always.

The CSV text is cut into blocks of whole lines (:mod:`.inputs`); each block is
parsed by Arrow with typed columns and checked in bulk (:mod:`.checks`). A
column whose typed parse fails in a block is parsed as raw bytes from then on,
and only its values that the bulk conversion cannot settle are looked at one by
one. A block never stops the file: the next one is parsed afresh. A file that
cannot be read to its end (a gzip stream cut short or damaged) keeps every row
before the damage and then raises :class:`FlowReadError` saying how far it got,
unless ``ReadConfig(allow_partial=True)`` asks for the rows without the error
(the report then says the file is incomplete).

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
import hashlib
import logging
import os
import re
import stat
import threading
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

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
from .checks import REASONS, as_text, check_table, type_problem, value_text
from .inputs import UTF8_BOM, Block, CutLine, FlowText, LongLine, classify, name_format, open_regular

__all__ = ["FlowReadError", "ReadConfig", "ReadReport", "FlowReader", "read_flows", "read_header", "rejects_name",
           "column_roles"]

log = logging.getLogger(__name__)

REJECTS_HEADER = ["source", "line", "column", "reason", "value", "row"]
# Environment setting for where rejects go when the input's folder is not writable.
STATE_ENV = "XDG_STATE_HOME"


@dataclass(frozen=True)
class ReadConfig:
    """How flow files are read.

    Attributes:
        chunk_rows: rows per chunk yielded by :class:`FlowReader` (about
            200k rows of v2 is ~80 MB in memory).
        require_labels: the ``Label`` and ``Attack`` columns must be present
            and valid (training, evaluation). Without it (detection) they are
            passed through: a bad ``Label`` becomes empty and an empty
            ``Attack`` stays, without costing the row its place.
        schema: force a schema (``v1``/``v2``/``v3``) instead of recognising
            it from the header; a v2 file read as ``v1`` keeps only v1 columns.
        rejects_path: where rejected rows go. Default: ``<name>.rejects.csv``
            beside the input (``flows.csv`` gives ``flows.rejects.csv``,
            ``flows.parquet`` gives ``flows.parquet.rejects.csv``), or in
            ``rejects_dir`` if that is set. When the input's folder is not
            writable the default falls back to
            ``$XDG_STATE_HOME/flowsentinel/rejects/`` (``~/.local/state/...``),
            with a warning; a location that was asked for and cannot be
            written is a :class:`FlowReadError` before any row is read.
        rejects_dir: folder for rejects files when ``rejects_path`` is unset.
        line_column: if set, each chunk gets a column of this name holding
            the row's 1-based line number in the file (for alerts that point back).
        allow_partial: a file that cannot be read to its end (a gzip stream
            cut short or damaged) yields what was read and records the problem
            in :attr:`ReadReport.stopped` instead of raising
            :class:`FlowReadError` after the last good chunk.
        block_bytes: text parsed at a time (4 MiB); also the longest line
            accepted: a longer one is rejected as "line too long" unread.
        threads: let Arrow parse each block on several threads.
    """

    chunk_rows: int = 200_000
    require_labels: bool = True
    schema: str | None = None
    rejects_path: Path | None = None
    rejects_dir: Path | None = None
    line_column: str | None = None
    allow_partial: bool = False
    block_bytes: int = 4 << 20
    threads: bool = True


@dataclass
class ReadReport:
    """What happened while reading one file.

    ``n_rows == n_accepted + n_rejected`` at every chunk boundary and at the end.
    ``complete`` is true once the file was read to its end (false while
    reading, when the caller stopped early, or when the file could not be read
    to its end); ``stopped`` says why it could not, with line and byte offsets.
    ``lost`` lists byte ranges of the text that were skipped unread (lines
    longer than a block), each also counted as a rejected row. ``warnings``
    counts problems in columns that were not required (the rows were kept).
    """

    path: str
    schema: str = ""
    n_rows: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejects_path: str | None = None
    complete: bool = False
    stopped: str | None = None
    n_bytes: int = 0
    lost: list[dict[str, Any]] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        text = f"{self.path}: {self.n_accepted:,} flows read ({self.schema})"
        if self.n_rejected:
            why = ", ".join(f"{k}: {v:,}" for k, v in sorted(self.reasons.items()))
            text += f", {self.n_rejected:,} rejected ({why}) -> {self.rejects_path}"
        if self.warnings:
            text += "; kept despite " + ", ".join(f"{k} ({v:,})" for k, v in sorted(self.warnings.items()))
        if self.stopped:
            text += "; INCOMPLETE: the file could not be read to its end"
        return text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def column_roles(schema: Schema, columns: list[str], *, require_labels: bool) -> dict[str, tuple[str, bool]]:
    """How each column is checked: ``(kind, required)`` for :func:`.checks.check_table`.

    Schema features are required (counters ``int``, rates ``float``, addresses
    ``text``); ``Label`` and ``Attack`` are required only with
    ``require_labels``; ``Dataset`` is trimmed text, other columns pass through.

    >>> from flowsentinel.schema import get_schema
    >>> column_roles(get_schema("v1"), ["IN_BYTES", "L7_PROTO", "Label", "FLOW_ID"], require_labels=False)
    {'IN_BYTES': ('int', True), 'L7_PROTO': ('float', True), 'Label': ('label', False), 'FLOW_ID': ('raw', False)}
    """
    roles = {}
    for c in columns:
        if c in schema.features:
            roles[c] = ({"int64": "int", "float64": "float"}.get(schema.dtype(c), "text"), True)
        elif c == LABEL_COLUMN:
            roles[c] = ("label", require_labels)
        elif c == ATTACK_COLUMN:
            roles[c] = ("name", True) if require_labels else ("text", False)
        elif c == DATASET_COLUMN:
            roles[c] = ("text", False)
        else:
            roles[c] = ("raw", False)
    return roles


def rejects_name(path: str | Path) -> str:
    """The default rejects file name of an input: its name with ``.csv`` replaced, else extended.

    >>> rejects_name("a/flows.csv"), rejects_name("flows.csv.gz"), rejects_name("flows.parquet")
    ('flows.rejects.csv', 'flows.csv.gz.rejects.csv', 'flows.parquet.rejects.csv')
    """
    name = Path(path).name
    stem = name[:-4] if name.lower().endswith(".csv") else name
    return stem + ".rejects.csv"


def read_header(path: str | Path) -> list[str]:
    """Column names of a flow file, without reading its rows."""
    path = Path(path)
    if name_format(path) == "parquet":
        with _parquet_file(path) as (pf, _):
            return list(pf.schema_arrow.names)
    with FlowText(path) as text:
        return text.header()


class _parquet_file:
    """A Parquet file opened through the regular-file check, errors naming the file."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import pyarrow.parquet as pq

        self._fh = open_regular(self.path)
        try:
            head = self._fh.read(4) or b""
            classify(self.path, head)
            self._fh.seek(0)
            return pq.ParquetFile(self._fh), self._fh
        except FlowReadError:
            self._fh.close()
            raise
        except Exception as exc:  # pyarrow raises several types for damaged files
            self._fh.close()
            raise FlowReadError(f"{self.path}: cannot read as Parquet: {_short(exc)}; "
                                "the file is damaged or not Parquet") from None

    def __exit__(self, *exc) -> None:
        self._fh.close()


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (or in the folder that would hold it)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def _state_dir() -> Path:
    base = os.environ.get(STATE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".local" / "state"
    return root / "flowsentinel" / "rejects"


def _is_rejects_file(path: Path) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            return next(csv.reader([fh.readline(4096)]), []) == REJECTS_HEADER
    except OSError:
        return False


class _Rejects:
    """Collects rejected rows and writes them to one CSV file, lazily."""

    def __init__(self, path: Path, source: str, report: ReadReport):
        self.path = path
        self.source = source
        self.report = report
        self.reasons: Counter[str] = Counter()
        self.n = 0
        self._fh = None
        self._writer = None

    def add(self, line: int, column: str, reason: str, value: str, text: str, count: int = 1) -> None:
        """One rejected row (or ``count`` rows that could not be read, as one entry)."""
        if self._fh is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "w", newline="", encoding="utf-8")
            except OSError as exc:
                raise FlowReadError(f"{self.path}: cannot write the rejects file: {exc.strerror or exc}; "
                                    "set another rejects location") from None
            self._writer = csv.writer(self._fh)
            self._writer.writerow(REJECTS_HEADER)
        self._writer.writerow([self.source, line, column, reason, value, text])
        self.reasons[reason] += count
        self.n += count
        self.report.n_rejected = self.n

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class FlowReader:
    """Iterate over validated chunks (DataFrames) of a flow file.

    After iteration, :attr:`report` says how many rows were read and rejected.
    Columns beyond the schema (timestamps from a flow meter, ``FLOW_ID``...)
    are passed through as read. The address columns are optional: a file
    without them (NF-CSE-CIC-IDS2018-v2) is read, and its chunks lack them.
    """

    def __init__(self, path: str | Path, config: ReadConfig = ReadConfig()):
        self.path = Path(path)
        self.config = config
        self.format = name_format(self.path)
        self.columns = read_header(self.path)
        where = str(self.path)
        _check_names(self.columns, where)
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
        if self.format == "parquet":
            self._check_parquet_types()
        self._rejects_path = self._choose_rejects_path()
        self.report = ReadReport(path=str(self.path), schema=self.schema.name)

    def _check_parquet_types(self) -> None:
        """Refuse, before any row is read, Parquet columns whose type cannot hold their values."""
        roles = self._roles()
        with _parquet_file(self.path) as (pf, _):
            arrow_schema = pf.schema_arrow
        problems = []
        for name in self._kept_columns():
            why = type_problem(roles[name][0], arrow_schema.field(name).type)
            if why:
                problems.append(f"column {name}: {why}")
        if problems:
            raise FlowReadError(f"{self.path}: {'; '.join(problems)}; write these columns as numbers "
                                "(integers for counters) or as text holding them")

    def _choose_rejects_path(self) -> Path:
        config = self.config
        if config.rejects_path is not None or config.rejects_dir is not None:
            path = Path(config.rejects_path) if config.rejects_path is not None else (
                Path(config.rejects_dir) / rejects_name(self.path))
            if not _writable(path.parent):
                raise FlowReadError(f"{path}: the rejects file cannot be written there (folder not writable); "
                                    "choose another rejects location")
        else:
            path = self.path.parent / rejects_name(self.path)
            if not _writable(path.parent):
                # A read-only evidence or shared folder must not stop a run:
                # rejects go to the user's state folder, named per input folder.
                tag = hashlib.sha256(str(self.path.resolve().parent).encode()).hexdigest()[:8]
                fallback = _state_dir() / f"{tag}-{rejects_name(self.path)}"
                if not _writable(fallback.parent):
                    raise FlowReadError(f"{self.path.parent}: not writable, and neither is {fallback.parent}: "
                                        "the rejects file has nowhere to go; set a rejects location")
                log.warning("%s: folder not writable; rejected rows, if any, go to %s", self.path.parent, fallback)
                path = fallback
        if path.exists() and not _is_rejects_file(path):
            raise FlowReadError(f"{path}: exists and is not a rejects file; move it away or choose another "
                                "rejects location")
        return path

    # Columns kept: schema features present, labels, and any extra columns of the file.
    def _kept_columns(self) -> list[str]:
        present = set(self.columns)
        keep = [c for c in self.schema.features if c in present]
        extra = [c for c in self.columns if c not in self.schema.features]
        if self.config.schema:
            # A forced narrower schema keeps labels and time columns only.
            extra = [c for c in extra if c in (LABEL_COLUMN, ATTACK_COLUMN, DATASET_COLUMN) or "MILLISECONDS" in c]
        if self.config.line_column:
            extra = [c for c in extra if c != self.config.line_column]
        return keep + extra

    def _roles(self) -> dict[str, tuple[str, bool]]:
        return column_roles(self.schema, self._kept_columns(), require_labels=self.config.require_labels)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        report = self.report
        report.n_rows = report.n_accepted = report.n_rejected = report.n_bytes = 0
        report.complete, report.stopped, report.lost, report.warnings = False, None, [], {}
        if self._rejects_path.exists() and _is_rejects_file(self._rejects_path):
            # A rejects file left by an earlier run would be read as this run's.
            self._rejects_path.unlink()
        rejects = _Rejects(self._rejects_path, str(self.path), report)
        warnings: Counter[str] = Counter()
        try:
            if self.format == "parquet":
                chunks = self._iter_parquet(rejects, warnings)
            else:
                chunks = self._iter_csv(rejects, warnings)
            for frame in _rechunk(chunks, self.config.chunk_rows, self._nullable_ints()):
                yield frame
            if report.stopped and not self.config.allow_partial:
                raise FlowReadError(report.stopped)
            report.complete = report.stopped is None
        finally:
            rejects.close()
            report.n_rejected = rejects.n
            report.reasons = dict(rejects.reasons)
            report.rejects_path = str(rejects.path) if rejects.n else None
            report.warnings = dict(warnings)
            raising = report.stopped and not self.config.allow_partial
            if (rejects.n or warnings) and not raising:  # a raised error says it all, once
                log.warning("%s", report.summary())
            if report.stopped and not raising:
                log.error("%s", report.stopped)

    def _nullable_ints(self) -> tuple[str, ...]:
        # Labels that may be left empty (not required) stay integers with <NA>.
        return () if self.config.require_labels else (LABEL_COLUMN,)

    def _accept(self, checked, table_columns, lines: np.ndarray, texts, rejects: _Rejects, warnings: Counter,
                structural=()):
        """Write the rejected rows of a checked batch in line order; return the accepted rows as an Arrow table.

        ``structural`` holds ``(line, reason, value, text)`` of rows rejected
        before they had columns (a wrong number of fields).
        """
        import pyarrow as pa

        accepted = checked.accepted
        entries = [(line, "", reason, value, text) for line, reason, value, text in structural]
        bad = np.flatnonzero(~accepted)
        for i, row_text in zip(bad, texts(bad) if len(bad) else []):
            name = checked.names[checked.columns[i]]
            entries.append((int(lines[i]), name, REASONS[checked.codes[i]],
                            value_text(table_columns[name], int(i)), row_text))
        for entry in sorted(entries, key=lambda e: e[0]):
            rejects.add(*entry)
        warnings.update(checked.warnings)
        n_ok = int(accepted.sum())
        columns = dict(checked.values)
        if self.config.line_column:
            columns[self.config.line_column] = pa.array(lines, pa.int64())
        table = pa.table(columns)
        if n_ok != len(accepted):
            table = _without_empty_masks(table.filter(pa.array(accepted)))
        self.report.n_accepted += n_ok
        return table

    # ---- CSV -------------------------------------------------------------------------------

    def _iter_csv(self, rejects: _Rejects, warnings: Counter):
        config = self.config
        parser = _BlockParser(self.columns, self._kept_columns(), self._roles(), where=str(self.path),
                              need_lines=bool(config.line_column))
        workers = min(4, os.cpu_count() or 1) if config.threads else 1
        report = self.report
        with FlowText(self.path) as text, _Pool(workers) as pool:
            if text.header() != self.columns:
                raise FlowReadError(f"{self.path}: the header changed while the file was being read")
            # Blocks are parsed ahead on worker threads (Arrow releases the GIL) while
            # results are taken, written and yielded here, in file order. The look-ahead
            # keeps the workers busy while this thread converts a chunk to pandas.
            pending: deque = deque()
            ahead = 1 if workers == 1 else 2 * workers + 2
            for item in text.blocks(config.block_bytes):
                pending.append(pool.submit(parser.parse, item) if isinstance(item, Block) else item)
                while len(pending) > ahead:
                    yield from self._csv_item(pending.popleft(), rejects, warnings)
            while pending:
                yield from self._csv_item(pending.popleft(), rejects, warnings)
            report.n_bytes = text.position
            if not text.complete:
                at = f"compressed byte {text.problem_at:,} of {text.size:,}, " if text.kind == "gzip" and \
                    text.problem_at is not None else ""
                report.stopped = (
                    f"{self.path}: unreadable from line {text.line:,} on ({at}text byte {text.position:,}): "
                    f"{text.problem}; {report.n_rows:,} rows came through ({report.n_accepted:,} accepted, "
                    f"{rejects.n:,} rejected), the rest is missing: re-copy or re-download the file"
                )

    def _csv_item(self, item, rejects: _Rejects, warnings: Counter):
        report = self.report
        if isinstance(item, LongLine):
            report.n_rows += 1
            size = item.end - item.start
            rejects.add(item.line, "", "line too long", f"{size:,} bytes",
                        item.head.decode("utf-8", "backslashreplace") + "...")
            report.lost.append({"line": item.line, "start": item.start, "end": item.end,
                                "reason": f"line too long (over {self.config.block_bytes:,} bytes)"})
        elif isinstance(item, CutLine):
            if item.data.strip(b"\r\n"):
                report.n_rows += 1
                rejects.add(item.line, "", "cut short", f"{len(item.data):,} bytes",
                            item.data[:1000].decode("utf-8", "backslashreplace"))
        else:
            for parsed in item.result():
                report.n_rows += parsed.n_records
                if parsed.checked is not None:
                    yield self._accept(parsed.checked, parsed.columns, parsed.lines, parsed.text_of,
                                       rejects, warnings, parsed.structural)
                else:
                    for line, reason, value, row_text in parsed.structural:
                        rejects.add(line, "", reason, value, row_text)

    # ---- Parquet ---------------------------------------------------------------------------

    def _iter_parquet(self, rejects: _Rejects, warnings: Counter):
        import pyarrow as pa

        roles = self._roles()
        kept = self._kept_columns()
        report = self.report
        with _parquet_file(self.path) as (pf, _):
            start = 0
            for group in range(pf.num_row_groups):
                n_group = pf.metadata.row_group(group).num_rows
                done = 0
                batches = pf.iter_batches(batch_size=max(1, self.config.chunk_rows), row_groups=[group],
                                          columns=kept, use_threads=self.config.threads)
                while True:
                    try:
                        batch = next(batches, None)
                    except (pa.ArrowException, OSError, ValueError, KeyError, IndexError) as exc:
                        lost = n_group - done
                        first, last = start + done + 2, start + n_group + 1
                        rejects.add(first, "", "unreadable data", f"rows at lines {first:,}-{last:,} ({lost:,} rows)",
                                    f"row group {group}: {_short(exc)}", count=lost)
                        report.n_rows += lost
                        report.lost.append({"line": first, "rows": lost, "row_group": group,
                                            "reason": f"unreadable data: {_short(exc)}"})
                        log.error("%s: row group %d (lines %d-%d) cannot be read: %s", self.path, group, first,
                                  last, _short(exc))
                        break
                    if batch is None:
                        break
                    n = batch.num_rows
                    # Parquet has no text lines; "line" is the 1-based row number + 1 (as if a header).
                    lines = np.arange(start + done, start + done + n, dtype=np.int64) + 2
                    columns = {c: batch.column(c) for c in kept}
                    checked = check_table(columns, roles, n)
                    report.n_rows += n
                    done += n
                    yield self._accept(checked, columns, lines, _record_text(columns), rejects, warnings)
                start += n_group
            report.n_bytes = os.path.getsize(self.path)


def _without_empty_masks(table):
    """Drop validity bitmaps that mark nothing (left by rejected rows); pandas converts faster without."""
    import pyarrow as pa

    columns = []
    for column in table.columns:
        chunks = []
        for chunk in column.chunks:
            buffers = chunk.buffers()
            if chunk.null_count == 0 and buffers and buffers[0] is not None and not pa.types.is_nested(chunk.type):
                chunk = pa.Array.from_buffers(chunk.type, len(chunk), [None, *buffers[1:]], offset=chunk.offset)
            chunks.append(chunk)
        columns.append(pa.chunked_array(chunks, column.type))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _check_names(columns: list[str], where: str) -> None:
    seen: dict[str, int] = {}
    twice = []
    for i, name in enumerate(columns, 1):
        if name in seen:
            twice.append(f"{name or '(empty)'} (columns {seen[name]} and {i})")
        else:
            seen[name] = i
    if twice:
        raise FlowReadError(f"{where}: column name(s) appear more than once: {', '.join(twice)}; "
                            "rename or remove the copies")


def _record_text(columns):
    """Rows of Arrow columns as comma-separated text, for the rejects file (one take per column)."""
    import pyarrow as pa

    def texts(rows: np.ndarray) -> list[str]:
        taken = [col.take(pa.array(rows)).to_pylist() for col in columns.values()]
        return [",".join(map(as_text, values)) for values in zip(*taken)]

    return texts


def _rechunk(tables, rows: int, nullable_ints: tuple[str, ...]) -> Iterator[pd.DataFrame]:
    """Arrow tables of any size to DataFrames of ``rows`` rows (the last may be shorter).

    Tables are only sliced (no copy) until a chunk is full; each row is
    converted to pandas once, so the cost is linear in the rows read.
    """
    import pyarrow as pa

    parts: list = []
    held = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        parts.append(table)
        held += table.num_rows
        while held >= rows:
            whole = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            rest = whole.slice(rows)
            parts = [rest] if rest.num_rows else []
            held = rest.num_rows
            yield _to_pandas(whole.slice(0, rows), nullable_ints)
    if held:
        yield _to_pandas(pa.concat_tables(parts) if len(parts) > 1 else parts[0], nullable_ints)


def _to_pandas(table, nullable_ints: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow as pa

    # One copy into Arrow's pool, then columns handed to pandas as they are (no 2-D block to fill).
    frame = table.combine_chunks().to_pandas(split_blocks=True)
    for name in nullable_ints:
        if name in frame.columns and table.column(name).null_count:
            # pandas would make an int64 column with nulls float64.
            frame[name] = table.column(name).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return frame


# ---- CSV blocks --------------------------------------------------------------------------------


class _Pool:
    """A thread pool, or calls made at once when there is one worker."""

    def __init__(self, workers: int):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="flowsentinel-read") if workers > 1 else None

    def submit(self, fn, *args) -> Future:
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the caller by result(), as a pool would
            future.set_exception(exc)
        return future

    def __enter__(self) -> "_Pool":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


_COLUMN_NUMBER = re.compile(r"In CSV column #(\d+)")
# Typed parses of one block that may fail (each naming a column to parse as
# bytes) before every column is parsed as bytes.
_TYPED_ATTEMPTS = 3
# Blocks in a row without a bad value after which a column parsed as bytes is typed again.
_RETYPE_AFTER = 8


@dataclass
class _Parsed:
    n_records: int
    structural: list  # (line, reason, value, text) of rows with the wrong number of fields
    checked: Any = None
    columns: Any = None
    lines: Any = None
    text_of: Any = None


class _BlockParser:
    """Parses blocks of CSV lines into checked Arrow columns, typed where the data allows.

    Each column starts with its typed Arrow parse (int64, double, string). When
    a block's parse fails on a column, that column is parsed as raw bytes from
    then on and converted by :mod:`.checks`; the block is parsed again, and the
    next blocks start from the new types.
    """

    def __init__(self, names: list[str], kept: list[str], roles: dict[str, tuple[str, bool]], *, where: str,
                 need_lines: bool):
        import pyarrow as pa

        self.need_lines = need_lines  # every accepted row gets its line number (else only rejects do)
        self.names = names
        self.kept = kept
        self.roles = roles
        self.where = where
        typed = {"int": pa.int64(), "label": pa.int64(), "float": pa.float64()}
        self.typed = {c: typed.get(roles[c][0], pa.string()) for c in kept}
        self.types = dict(self.typed)
        self._plain_blocks = {c: 0 for c in kept}  # blocks in a row whose bytes a typed parse would take
        self._lock = threading.Lock()  # blocks are parsed on several threads; the types are shared

    def parse(self, block: Block) -> list[_Parsed]:
        """Parse and check one block, in parts when it has lines that are not UTF-8 (thread-safe).

        Arrow hands a badly formed line to the row handler as text, and fails
        on one that is not UTF-8; such lines are parsed on their own, one by one.
        """
        bad = _non_utf8_lines(block.data)
        if not bad:
            return [self._parse_block(block)]
        parts, pos, line = [], 0, block.first_line
        for start, end in bad + [(len(block.data), len(block.data))]:
            if start > pos:
                part = _sub_block(block, pos, start, line)
                parts.append(self._parse_block(part))
                line += part.n_lines
            if end > start:
                part = _sub_block(block, start, end, line)
                parts.append(self._parse_lines(part))
                line += part.n_lines
            pos = end
        return parts

    def _parse_block(self, block: Block) -> _Parsed:
        import pyarrow as pa

        data = block.data
        if len(data) < 64 and not data.strip(b"\r\n"):
            return _Parsed(0, [])
        quoted = data.find(b'"') >= 0
        invalid: list = []
        table = None
        with self._lock:
            types = dict(self.types)
        if (data.find(b"x") >= 0 or data.find(b"X") >= 0) and (data.find(b"0x") >= 0 or data.find(b"0X") >= 0):
            # Arrow's int64 parse reads "0x1f" as 31 (and wraps past 2**63): such text is not a
            # decimal counter, so integers of this block are parsed as bytes and checked here.
            types = {c: pa.binary() if t == pa.int64() else t for c, t in types.items()}
        for attempt in range(len(self.kept) + 2):
            invalid = []
            try:
                table = self._read(data, invalid, quoted, types)
                break
            except pa.ArrowInvalid as exc:
                with self._lock:
                    # Each failed attempt costs a parse: after a few, every column goes to bytes.
                    if not self._loosen(exc, types, everything=attempt >= _TYPED_ATTEMPTS):
                        break
                    types = dict(self.types)
        if table is None:
            return self._parse_lines(block)
        n_records = table.num_rows + len(invalid)
        if any(number is None or not 0 < number <= n_records for number, _, _ in invalid):
            return self._parse_lines(block)
        columns = {c: table.column(c) for c in self.kept}
        checked = check_table(columns, self.roles, table.num_rows)
        self._retype(types, checked.plain)
        if not (invalid or self.need_lines or (checked.codes != 0).any()):
            return _Parsed(n_records, [], checked, columns)  # no line number is asked for
        record_lines, spans = _record_lines(block, n_records, quoted, need_spans=bool(invalid))
        valid = np.ones(n_records, dtype=bool)
        structural = []
        for number, actual, row_text in invalid:
            k = number - 1
            valid[k] = False
            reason = "truncated line" if actual < len(self.names) else "too many fields"
            structural.append((int(record_lines[k]), reason, f"{actual} of {len(self.names)} fields", row_text))
        valid_idx = np.flatnonzero(valid)
        lines = record_lines[valid_idx]

        def text_of(rows: np.ndarray) -> list[str]:
            nonlocal spans
            if spans is None:
                _, spans = _record_lines(block, n_records, quoted, need_spans=True)
            return [data[start:end].rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                    for start, end in spans[valid_idx[rows]]]

        return _Parsed(n_records, structural, checked, columns, lines, text_of)

    def _read(self, data: bytes, invalid: list, quoted: bool, types: dict):
        import pyarrow as pa
        import pyarrow.csv as pacsv

        def on_invalid(row) -> str:
            invalid.append((row.number, row.actual_columns, row.text))
            return "skip"

        if data.startswith(UTF8_BOM):
            # Arrow drops a byte-order mark at the start of its input; here it belongs to a value.
            data = b"\n" + data
        return pacsv.read_csv(
            pa.py_buffer(data),
            # Arrow's own 1 MiB steps keep its working set in cache; a longer line
            # makes it fail, and the block is then read line by line.
            read_options=pacsv.ReadOptions(use_threads=False, column_names=self.names,
                                           block_size=min(len(data) + 1, 1 << 20)),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=quoted),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=self.kept,
                                                 null_values=[], strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        )

    def _retype(self, used: dict, plain: set) -> None:
        """Give a column parsed as bytes its typed parse back after blocks in a row without a bad value.

        A few bad rows early in a large file must not slow the rest of it down.
        """
        import pyarrow as pa

        with self._lock:
            for c, type_ in used.items():
                if type_ != pa.binary() or self.types[c] != pa.binary():
                    continue
                self._plain_blocks[c] = self._plain_blocks[c] + 1 if c in plain else 0
                if self._plain_blocks[c] >= _RETYPE_AFTER:
                    self.types[c] = self.typed[c]
                    self._plain_blocks[c] = 0

    def _loosen(self, exc: Exception, tried: dict, *, everything: bool = False) -> bool:
        """Parse the column a typed parse failed on as bytes; ``False`` when nothing is left to loosen.

        ``tried`` holds the types of the failed parse; another thread may
        already have loosened the column, which counts as progress. With
        ``everything``, or when the error names no column, every column is.
        """
        import pyarrow as pa

        found = _COLUMN_NUMBER.search(str(exc))
        if found and int(found.group(1)) < len(self.names) and not everything:
            name = self.names[int(found.group(1))]
            if name in tried and tried[name] != pa.binary():
                if self.types[name] != pa.binary():
                    log.debug("%s: column %s parsed as text from here on: %s", self.where, name, _short(exc))
                    self.types[name] = pa.binary()
                return True
        loosened = [c for c, t in tried.items() if t != pa.binary()]
        for c in loosened:
            self.types[c] = pa.binary()
        return bool(loosened)

    def _parse_lines(self, block: Block) -> _Parsed:
        """Last resort for a block Arrow cannot parse at all: each line on its own, with :mod:`csv`."""
        import pyarrow as pa

        log.debug("%s: lines %d-%d parsed one by one", self.where, block.first_line,
                  block.first_line + block.n_lines - 1)
        width = len(self.names)
        index = {c: self.names.index(c) for c in self.kept}
        fields: list[list[bytes]] = []
        lines, texts, structural = [], [], []
        for k, raw in enumerate(block.data.split(b"\n")):
            line = raw.rstrip(b"\r")
            if not line:
                continue
            number = block.first_line + k
            row_text = line.decode("utf-8", "backslashreplace")
            try:
                # latin-1 maps bytes one to one, so the fields come back as the bytes written.
                row = [f.encode("latin-1") for f in next(csv.reader([line.decode("latin-1")]))]
            except csv.Error:
                structural.append((number, "unreadable line", f"{len(line):,} bytes", row_text))
                continue
            if len(row) != width:
                reason = "truncated line" if len(row) < width else "too many fields"
                structural.append((number, reason, f"{len(row)} of {width} fields", row_text))
                continue
            fields.append(row)
            lines.append(number)
            texts.append(row_text)
        columns = {c: pa.array([r[index[c]] for r in fields], pa.binary()) for c in self.kept}
        checked = check_table(columns, self.roles, len(fields))
        return _Parsed(len(fields) + len(structural), structural, checked, columns,
                       np.asarray(lines, dtype=np.int64), lambda rows: [texts[i] for i in rows])


def _non_utf8_lines(data: bytes) -> list[tuple[int, int]]:
    """Byte spans of the lines of ``data`` that are not valid UTF-8 (none, usually: one fast check)."""
    if data.isascii():
        return []
    try:
        data.decode("utf-8")
        return []
    except UnicodeDecodeError as exc:
        first = data.rfind(b"\n", 0, exc.start) + 1
    spans = []
    start = first
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end + 1
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            if spans and spans[-1][1] == start:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        start = end
    return spans


def _sub_block(block: Block, start: int, end: int, first_line: int) -> Block:
    data = block.data[start:end]
    return Block(data, first_line, data.count(b"\n") + (0 if data.endswith(b"\n") else 1), block.start + start)


def _record_lines(block: Block, n_records: int, quoted: bool, *, need_spans: bool):
    """The 1-based line of each record of a block, and (on request) each record's byte span.

    Arrow skips empty lines, lets a quoted field run over line ends and ends
    a record at a carriage return on its own, so records and lines differ only
    when the block has one of these; otherwise record ``k`` is line
    ``first_line + k``. Line numbers count line feeds, as editors do.
    """
    data = block.data
    if not quoted and not need_spans and n_records == block.n_lines:
        # One record per line, unless blank lines (fewer records) happen to be
        # balanced by bare carriage returns (more): rule those out.
        carriage = data.count(b"\r")
        if carriage == 0 or carriage == block.n_lines and data.count(b"\r\n") == carriage:
            return np.arange(block.first_line, block.first_line + n_records, dtype=np.int64), None
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 0x0A)
    # Arrow ends a record at LF, CRLF or a carriage return on its own; lines count LFs.
    cr = np.flatnonzero(arr == 0x0D)
    after = cr + 1
    inside = after < len(data)
    bare = np.concatenate((cr[inside][arr[after[inside]] != 0x0A], cr[~inside]))
    ends = np.sort(np.concatenate((newlines, bare))) if len(bare) else newlines
    if quoted:
        # An end inside double quotes is part of a value.
        quotes = np.flatnonzero(arr == 0x22)
        ends = ends[np.searchsorted(quotes, ends) % 2 == 0]
    starts = np.concatenate(([0], ends + 1))
    ends = np.concatenate((ends, [len(data)]))
    if starts[-1] >= len(data):
        starts, ends = starts[:-1], ends[:-1]
    line_no = np.searchsorted(newlines, starts)
    length = ends - starts
    carriage = (length > 0) & (arr[np.maximum(ends - 1, 0)] == 0x0D)
    nonempty = (length - carriage) > 0
    lines = block.first_line + line_no[nonempty]
    spans = np.stack((starts[nonempty], ends[nonempty]), axis=1)
    if len(lines) != n_records:
        # Bare carriage returns or stray quotes make Arrow count records differently;
        # number the records in order rather than fail.
        log.debug("line numbers from line %d on are approximate (%d records, %d lines)", block.first_line,
                  n_records, len(lines))
        lines = np.arange(block.first_line, block.first_line + n_records, dtype=np.int64)
        spans = np.resize(spans if len(spans) else np.array([[0, len(data)]]), (n_records, 2))
    return lines.astype(np.int64), spans


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
