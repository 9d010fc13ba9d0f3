"""Alert sinks: per-flow verdicts as EVE JSON lines (as Suricata writes them), ECS documents or CSV.

:class:`AlertWriter` takes one scored frame at a time. For ``jsonl`` (EVE)
and ``ecs`` it writes an alert record for each alert, a flow record for
every other flow (unless ``only_alerts``), folds repeated alerts into
follow-up records (:mod:`flowsentinel.alerting.suppress`) and, given an
``explainer``, attaches the features that pushed each alert's score most.
``csv`` is a per-flow verdict table. Records are assembled column-wise
(:mod:`flowsentinel.alerting.records`), not one dict per flow, so that
writing keeps up with scoring; ``benchmarks/bench_alerts.py`` measures it.

Call :meth:`AlertWriter.finish` when the input ends, so that open
suppression windows report what they folded.

>>> import io, json
>>> out = io.StringIO()
>>> frame = pd.DataFrame({"IPV4_SRC_ADDR": ["10.0.0.1"], "L4_SRC_PORT": [4000], "IPV4_DST_ADDR": ["10.0.0.2"],
...                       "L4_DST_PORT": [80], "PROTOCOL": [6]})
>>> w = AlertWriter(out, "jsonl", model_name="m", model_version="1", sensor="sensor-1")
>>> w.write(frame, np.array([0.97]), np.array(["DoS"]), np.array([True]), np.array([2]))
>>> w.finish()
>>> rec = json.loads(out.getvalue())
>>> rec["event_type"], rec["proto"], rec["alert"]["category"], rec["dest_port"], rec["host"]
('alert', 'TCP', 'Attempted Denial of Service', 80, 'sensor-1')
>>> rec["flowsentinel"]["class"], rec["flowsentinel"]["time_source"]
('DoS', 'clock')
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
from typing import IO, Callable

import numpy as np
import pandas as pd

from ..alerting.fields import (
    FlowColumns,
    cat_list,
    factorize_text,
    flow_ids,
    iso_times,
    json_fixed,
    json_ints,
    proto_codes,
)
from ..alerting.ndpi import app_proto_codes
from ..alerting.records import RecordBuilder, RecordConfig
from ..alerting.suppress import SuppressConfig, Suppressor
from ..choices import OUTPUT_FORMATS, check_choice

__all__ = ["AlertWriter", "CONTEXT_COLUMN", "CSV_FIELDS", "Explainer", "FOLD_BY_DESTINATION"]

log = logging.getLogger(__name__)

CSV_FIELDS = ["row", "flow_id", "timestamp", "src_ip", "src_port", "dest_ip", "dest_port", "proto",
              "score", "predicted_class", "alert", "true_class", "community_id", "app_proto", "explanation"]
#: A frame column with, per flow flagged by host context (``flowsentinel.serving.context``), why;
#: written as ``flowsentinel.host_context`` in EVE and ECS records.
CONTEXT_COLUMN = "_host_context"
#: A boolean frame column: alerts to fold by destination when suppressing (a flood from many sources).
FOLD_BY_DESTINATION = "_fold_by_destination"
#: ``explainer(frame, positions)`` -> an :class:`~flowsentinel.explain.Explanations` of those rows.
Explainer = Callable[[pd.DataFrame, np.ndarray], object]
# What a CSV cell must be quoted for: the delimiter, the quote, a line break.
_CSV_SPECIAL = re.compile(r'[,"\r\n]')


def _csv_cells(values) -> np.ndarray:
    """Values as CSV cells, quoted where the CSV dialect needs it (once per distinct value)."""
    return _csv_coded(values).text()


def _csv_table(uniques: np.ndarray) -> np.ndarray:
    """The CSV cells of distinct values (``None``: an empty cell).

    Text is quoted column-wise, as :mod:`csv` quotes a lone field: where it
    holds a comma, a quote or a line break, and the empty string as ``""``.
    Values of other types (rare: numbers in a text column) go through
    :mod:`csv` itself.
    """
    uniques = np.asarray(uniques, dtype=object)
    missing = np.equal(uniques, None)
    present = uniques[~missing] if missing.any() else uniques
    kind = pd.api.types.infer_dtype(present, skipna=False)
    strings = present.tolist()
    if kind == "string" and min(map(len, strings)) > 0 and not _CSV_SPECIAL.search("\x00".join(strings)):
        cells = present  # addresses, classes: nothing to quote (one scan of all the text)
    elif kind in ("string", "empty"):
        text = pd.Series(present, dtype=object)
        quoted = '"' + text.str.replace('"', '""', regex=False) + '"'
        cells = text.where(~text.str.contains(_CSV_SPECIAL.pattern, regex=True), quoted).to_numpy(dtype=object, copy=True)
        cells[(text == "").to_numpy()] = '""'
    else:
        cells = np.empty(len(present), dtype=object)
        for i, u in enumerate(strings):
            buf = io.StringIO()
            csv.writer(buf, lineterminator="").writerow([u])
            cells[i] = buf.getvalue()
    if not missing.any():
        return cells
    table = np.full(len(uniques), None, dtype=object)
    table[~missing] = cells
    return table


def _csv_coded(values, factors=None) -> "_Coded":
    """Values as codes into their distinct values' CSV cells (``factors``: their factorization, if known)."""
    codes, uniques = factorize_text(values) if factors is None else factors
    return _Coded(codes, _csv_table(uniques))


def _csv_app(l7: np.ndarray) -> "_Coded":
    codes, names = app_proto_codes(l7)
    return _Coded(codes, _csv_table(names))


class _Coded:
    """A text column of CSV verdicts as codes into a table of cells (code ``-1`` or a ``None`` cell: empty)."""

    __slots__ = ("codes", "cells")

    def __init__(self, codes: np.ndarray, cells: np.ndarray):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.cells = np.asarray(cells, dtype=object)

    def text(self) -> np.ndarray:
        table = np.concatenate([self.cells, np.asarray([""], dtype=object)])
        table[np.equal(table, None)] = ""
        return table[np.where(self.codes < 0, len(self.cells), self.codes)]

    def arrow(self):
        import pyarrow as pa

        missing = np.equal(self.cells, None)
        codes = self.codes
        if missing.any():
            codes = np.where(missing[np.clip(codes, 0, None)], -1, codes) if len(self.cells) else codes
        dictionary = pa.array(np.where(missing, "", self.cells).tolist() if missing.any() else self.cells,
                              type=pa.string())
        indices = pa.array(codes.astype(np.int32), mask=codes < 0)
        return pa.DictionaryArray.from_arrays(indices, dictionary).dictionary_decode()


class _Ints:
    """An integer column of CSV verdicts, turned into text by whichever assembles the lines.

    ``valid`` False marks an empty cell (a port that is NaN).
    """

    __slots__ = ("values", "valid")

    def __init__(self, values: np.ndarray, valid: np.ndarray | None = None):
        self.values = np.asarray(values, dtype=np.int64)
        self.valid = valid

    def text(self) -> np.ndarray:
        text = json_ints(self.values)
        return text if self.valid is None else np.where(self.valid, text, "").astype(object)


def _text(field) -> np.ndarray:
    if isinstance(field, (_Ints, _Coded)):
        return field.text()
    if hasattr(field, "fill_null"):  # a pyarrow array (Community IDs)
        return np.asarray(field.fill_null("").to_numpy(zero_copy_only=False), dtype=object)
    return field


def _csv_text_arrow(fields: list, empty: np.ndarray) -> str | None:
    """The CSV lines of ``fields`` (cells already quoted where needed) joined by pyarrow's CSV writer.

    The same text as joining the cells in Python (:func:`cat_list`), in C++
    and without a Python string per cell: text columns go to Arrow as codes
    into their distinct cells, Community IDs are built as Arrow text, and
    integers are formatted by Arrow's cast to string (the decimal digits, as
    ``str`` writes them). ``None`` where pyarrow is missing or refuses a
    cell: its writer, quoting nothing, rejects a value with a comma, quote
    or line break, which here is a cell already quoted; the caller then
    joins the cells in Python.
    """
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:  # pragma: no cover - pyarrow comes with the readers' dependencies
        return None
    n = len(empty)
    try:
        arrays = []
        for f in fields:
            if f is empty:
                arrays.append(pa.nulls(n, pa.string()))  # written as an empty cell
            elif isinstance(f, _Ints):
                arrays.append(pa.array(f.values, mask=None if f.valid is None else ~f.valid).cast(pa.string()))
            elif isinstance(f, _Coded):
                arrays.append(f.arrow())
            elif isinstance(f, pa.Array):
                arrays.append(f)
            else:
                arrays.append(pa.array(f, type=pa.string()))
        sink = pa.BufferOutputStream()  # an Arrow sink: the writer runs without the GIL, unlike a Python file
        pcsv.write_csv(pa.Table.from_arrays(arrays, names=CSV_FIELDS), sink,
                       pcsv.WriteOptions(include_header=False, quoting_style="none"))
        text = sink.getvalue().to_pybytes()
    except (pa.ArrowException, TypeError, UnicodeError):
        return None
    return text.decode("utf-8")


class AlertWriter:
    """Writes the verdicts of scored frames to ``fh``.

    Args:
        fh: a text stream.
        fmt: ``jsonl`` (EVE), ``ecs`` or ``csv``.
        model_name, model_version, threshold: the model's identity and alert threshold.
        only_alerts: write alerts (and follow-ups) only, not every flow.
        sensor: ``host`` / ``observer.hostname`` (default: this machine's name).
        interface: ``in_iface`` when the flows come from a live interface.
        community_id_seed: Community ID seed (default 0, as Suricata and Zeek).
        suppress: aggregation settings; ``None`` or ``enabled=False`` writes
            every alert (EVE and ECS only: CSV stays one row per flow).
        explainer: called with (frame, positions of the alerts to write); its
            attributions go into ``flowsentinel.explanation``.
        explain_top_k: columns per explanation.
    """

    def __init__(self, fh: IO[str], fmt: str = "jsonl", *, model_name: str = "", model_version: str = "",
                 only_alerts: bool = False, threshold: float | None = None, sensor: str | None = None,
                 interface: str | None = None, community_id_seed: int = 0,
                 suppress: SuppressConfig | None = None, explainer: Explainer | None = None,
                 explain_top_k: int = 5):
        self.fh = fh
        self.fmt = check_choice("format", fmt, OUTPUT_FORMATS)
        self.model_name, self.model_version = model_name, model_version
        self.only_alerts = only_alerts
        self.builder = RecordBuilder(RecordConfig(model_name, model_version, threshold, sensor, interface,
                                                  community_id_seed))
        self.suppressor = Suppressor(suppress) if suppress is not None and suppress.enabled and fmt != "csv" else None
        self.explainer = explainer
        self.explain_top_k = explain_top_k
        self._csv_header = False
        self.n_written = 0
        self.n_alerts_written = 0
        self.n_followups = 0
        self.n_explained = 0
        self.explain_seconds = 0.0

    @property
    def n_suppressed(self) -> int:
        return self.suppressor.n_suppressed if self.suppressor else 0

    def write(self, flows: pd.DataFrame, scores: np.ndarray, classes: np.ndarray, alerts: np.ndarray,
              rows: np.ndarray, true_classes: np.ndarray | None = None) -> None:
        """Write the verdicts of one scored frame (``rows``: line numbers or offsets, for ``flowsentinel.row``)."""
        n = len(flows)
        if n == 0:
            return
        alerts = np.asarray(alerts, dtype=bool)
        cols = FlowColumns.from_frame(flows)
        clock_ms = time.time() * 1000.0
        if self.fmt == "csv":
            self._write_csv(cols, flows, scores, classes, alerts, rows, true_classes, clock_ms)
            return
        suppressed = np.zeros(n, dtype=bool)
        if self.suppressor is not None:
            alert_idx = np.flatnonzero(alerts)
            if len(alert_idx):
                sub = cols.take(alert_idx)
                when, _ = sub.event_ms(clock_ms)
                sources = sub.src if sub.src is not None else np.full(len(alert_idx), None, dtype=object)
                victims = flows[FOLD_BY_DESTINATION].to_numpy(bool)[alert_idx] \
                    if FOLD_BY_DESTINATION in flows.columns else None
                send = self.suppressor.admit(when, sources, np.asarray(classes, dtype=object)[alert_idx], sub.dst,
                                             sub.dport, np.asarray(scores)[alert_idx],
                                             flow_ids(sub, np.asarray(rows)[alert_idx]), victims)
                suppressed[alert_idx[~send]] = True
        emitted = alerts & ~suppressed
        keep = np.flatnonzero(emitted) if self.only_alerts else np.arange(n)
        if len(keep):
            text = self.builder.frame_text(cols.take(keep), np.asarray(rows)[keep], np.asarray(scores)[keep],
                                           np.asarray(classes, dtype=object)[keep], alerts[keep],
                                           None if true_classes is None else np.asarray(true_classes)[keep],
                                           clock_ms)
            explanations = self._explanations(flows, keep, emitted[keep])
            lines = (self.builder.ecs_lines if self.fmt == "ecs" else self.builder.eve_lines)(
                text, None, explanations, suppressed[keep] if self.suppressor else None)
            self._emit(lines)
            self.n_alerts_written += int(emitted[keep].sum())
        if self.suppressor is not None:
            when, _ = cols.event_ms(clock_ms)
            self.suppressor.advance(float(np.max(when)))
            self._write_followups()

    def finish(self) -> None:
        """The input ended: write the follow-ups of every open suppression window."""
        if self.suppressor is not None:
            self.suppressor.finish()
            self._write_followups()
        self.fh.flush()

    # ---- helpers ---------------------------------------------------------
    def _emit(self, lines: list[str]) -> None:
        self.fh.write("\n".join(lines))
        self.fh.write("\n")
        self.n_written += len(lines)

    def _write_followups(self) -> None:
        closed = self.suppressor.take_closed()
        if closed:
            self._emit([self.builder.aggregate_record(a, self.fmt) for a in closed])
            self.n_followups += len(closed)

    def _explain(self, flows: pd.DataFrame, keep: np.ndarray, which: np.ndarray) -> list[tuple[int, list, float]]:
        """``(position in keep, top features, baseline score)`` for the rows of ``keep`` where ``which`` holds."""
        if self.explainer is None or not which.any():
            return []
        where = np.flatnonzero(which)
        t0 = time.perf_counter()
        ex = self.explainer(flows, keep[where])
        self.explain_seconds += time.perf_counter() - t0
        self.n_explained += len(where)
        base = round(float(ex.baseline_score), 6)
        return [(i, ex.top(j, self.explain_top_k), base) for j, i in enumerate(where.tolist())]

    def _explanations(self, flows: pd.DataFrame, keep: np.ndarray, emitted: np.ndarray) -> np.ndarray | None:
        """JSON fragments (``,"explanation":[...]``) for the emitted alerts among ``keep``; ``None`` elsewhere."""
        explained = self._explain(flows, keep, emitted)
        reasons = flows[CONTEXT_COLUMN].to_numpy(dtype=object)[keep] if CONTEXT_COLUMN in flows.columns else None
        if not explained and reasons is None:
            return None
        out = np.full(len(keep), None, dtype=object)
        for i, top, base in explained:
            out[i] = f',"explanation":{json.dumps(top, separators=(",", ":"))},"explanation_baseline":{base}'
        if reasons is not None:
            for i in np.flatnonzero(emitted & (reasons != "")):
                out[i] = (out[i] or "") + f',"host_context":{json.dumps(str(reasons[i]))}'
        return out

    def _write_csv(self, cols: FlowColumns, flows, scores, classes, alerts, rows, true_classes, clock_ms) -> None:
        whole = not self.only_alerts
        keep = np.arange(cols.n) if whole else np.flatnonzero(alerts)
        if not self._csv_header:
            self.fh.write(",".join(CSV_FIELDS) + "\n")
            self._csv_header = True
        if not len(keep):
            return
        c = cols if whole else cols.take(keep)  # every row: no copy
        rows = np.asarray(rows)[keep]
        when, from_clock = c.event_ms(clock_ms)
        empty = np.full(len(keep), "", dtype=object)

        def ints(values):
            if values is None:
                return empty
            finite = np.isfinite(values)
            return _Ints(np.where(finite, values, 0).astype(np.int64), finite)

        def texts(values, name=None):
            if values is None:
                return empty
            return _csv_coded(values, None if name is None else c.text_factors(name))

        cid = c.community_id_array(self.builder.config.community_id_seed)
        explanations = empty
        explained = self._explain(flows, keep, alerts[keep])
        if explained:
            cells = np.full(len(keep), "", dtype=object)
            for i, top, _ in explained:
                cells[i] = ";".join(f"{e['feature']}={e['value']}:{e['contribution']:+g}" for e in top)
            explanations = _csv_cells(cells)
        fields = [
            _Ints(rows) if rows.dtype.kind in "iu" else json_ints(rows), _Ints(flow_ids(c, rows)),
            empty if from_clock.all() else np.where(from_clock, "", iso_times(when)).astype(object),
            texts(c.src, "src"), ints(c.sport), texts(c.dst, "dst"), ints(c.dport),
            empty if c.proto is None else _Coded(*proto_codes(np.nan_to_num(c.proto))),
            json_fixed(np.asarray(scores)[keep]), texts(np.asarray(classes, dtype=object)[keep]),
            _Ints(alerts[keep].astype(np.int64)),
            empty if true_classes is None else texts(np.asarray(true_classes, dtype=object)[keep]),
            empty if cid is None else cid,
            empty if c.l7 is None else _csv_app(c.l7), explanations,
        ]
        text = _csv_text_arrow(fields, empty)
        if text is None:
            parts = [_text(fields[0])]
            for f in fields[1:]:
                parts += [",", _text(f)]
            self._emit(cat_list(*parts))
        else:
            self.fh.write(text)
            self.n_written += len(keep)
        self.n_alerts_written += int(alerts[keep].sum())
