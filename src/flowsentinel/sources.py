"""Labelled training data from several sources, in one flow table.

A *source* is one of:

* an NF flow file (any v1/v2/v3 file, CSV, gzip or Parquet, with or without
  address columns), whose ``Attack`` names go through the class taxonomy of
  its dataset;
* a labels file in the format of ``pcaps/labels.csv`` (``capture``,
  ``label``, ``use``), whose captures are metered by flowsentinel's own meter;
  only the rows whose ``use`` is asked for (``train`` by default) are read;
* a capture, or a folder of captures, with one label for all of them.

:func:`load_sources` returns a :class:`LabelledFlows`: one table with the NF
feature columns, ``Attack`` (the taxonomy's class), ``Label`` (0 benign, 1
attack) and, for every flow, its :data:`SOURCE_COLUMN`, its
:data:`GROUP_COLUMN` (what must lie wholly on one side of a split: the
capture; the device for captures under ``iot-sentinel/<device>/``; the row
itself for NF flow files, which carry no capture identity), the
:data:`CAPTURE_COLUMN` it was metered from and the attack name as its source
spelled it (:data:`NAME_COLUMN`); and a report per source with its flows per
class, the captures skipped and why. The spec syntax is documented in
``docs/sources.md``.

Metered captures are cached (Parquet), keyed by the capture's content digest,
the meter settings and the flowsentinel and nfstream versions, in
:attr:`SourcesConfig.cache_dir` (default: the user's cache folder), so that a
second run over the 530 shared captures reads instead of metering.

>>> parse_source("flows.csv.gz,dataset=nf-bot-iot,max_rows=1000", check_exists=False).dataset
'nf-bot-iot'
>>> spec = parse_source("data:pcaps/benign/iot-sentinel=Benign", check_exists=False)
>>> spec.kind, spec.label, spec.path.parts[-2:]
('captures', 'Benign', ('benign', 'iot-sentinel'))
>>> parse_source("labels.csv,use=train+check", check_exists=False, kind="labels").use
('train', 'check')
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, FlowReadError, MeterError, TaxonomyError
from .metering.config import MeterConfig
from .paths import data_dir
from .schema import (
    ADDRESS_COLUMNS,
    ATTACK_COLUMN,
    BENIGN_CLASS,
    DATASET_COLUMN,
    LABEL_COLUMN,
    TIME_COLUMNS,
    V1_FEATURES,
    V2_FEATURES,
    V3_FEATURES,
)
from .synthetic import SYNTHETIC_TAG
from .taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "SOURCE_COLUMN",
    "GROUP_COLUMN",
    "CAPTURE_COLUMN",
    "NAME_COLUMN",
    "DATA_PREFIX",
    "CAPTURES_DATASET",
    "SourceSpec",
    "SourcesConfig",
    "SourceReport",
    "LabelledFlows",
    "default_cache_dir",
    "parse_source",
    "parse_sources",
    "load_sources",
]

log = logging.getLogger(__name__)

#: The source a flow came from (its spec's name).
SOURCE_COLUMN = "Source"
#: The unit that lies wholly on one side of a split (capture, device, or file row).
GROUP_COLUMN = "Group"
#: The capture a metered flow came from; empty for rows of flow files.
CAPTURE_COLUMN = "Capture"
#: The attack name (or capture label) as the source wrote it, before the taxonomy.
NAME_COLUMN = "Source_Attack"
#: The columns :func:`load_sources` adds to the NF columns.
PROVENANCE_COLUMNS = (SOURCE_COLUMN, GROUP_COLUMN, CAPTURE_COLUMN, NAME_COLUMN)
#: A spec path starting with this is under the data folder (:func:`flowsentinel.paths.data_dir`).
DATA_PREFIX = "data:"
#: The taxonomy table that capture labels (and ``PATH=LABEL``) are read with.
CAPTURES_DATASET = "captures"
#: File endings taken as packet captures.
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
#: Source kinds.
KINDS = ("flows", "labels", "captures")
#: ``use`` values of a labels file; ``all`` selects every row.
USES = ("train", "check")
#: Columns kept where a source has them, empty where it has not: hosts and times
#: order and group flows (per-host windows) but are never model inputs.
CONTEXT_COLUMNS = tuple(ADDRESS_COLUMNS) + tuple(TIME_COLUMNS)
#: Columns of a labels file.
LABELS_COLUMNS = ("capture", "label")

_LINE = "__line__"
_OPTIONS = frozenset({"label", "use", "dataset", "name", "max_rows", "kind"})


# ---- specs -------------------------------------------------------------------
@dataclass(frozen=True)
class SourceSpec:
    """One source, parsed from the command line or a config (see :func:`parse_source`).

    Attributes:
        path: the flow file, labels file, capture or folder of captures.
        kind: ``flows``, ``labels`` or ``captures``.
        label: the one label of a capture source (or of an unlabelled flow file).
        use: the ``use`` values selected from a labels file.
        dataset: the taxonomy dataset of a flow file (default: recognised from
            its name or its ``Dataset`` column).
        name: how reports name the source (default: the path relative to the
            data folder when under it, else the path as written).
        max_rows: read at most this many valid rows of a flow file.
        text: the spec as written, for messages.
    """

    path: Path
    kind: str
    label: str | None = None
    use: tuple[str, ...] = ("train",)
    dataset: str | None = None
    name: str = ""
    max_rows: int | None = None
    text: str = ""


def _display_path(path: Path) -> str:
    """A path relative to the data folder when it lies under it, else as it is."""
    try:
        return path.resolve().relative_to(data_dir().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _resolve(path_text: str, base: Path | None, where: str) -> Path:
    if path_text.startswith(DATA_PREFIX):
        root = data_dir()
        rest = path_text[len(DATA_PREFIX):].lstrip("/")
        if not rest:
            raise ConfigError(f"{where}: {DATA_PREFIX!r} must be followed by a path under the data folder")
        return root / rest
    path = Path(path_text).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _detect_kind(path: Path, where: str) -> str:
    if path.is_dir() or path.name.lower().endswith(CAPTURE_SUFFIXES):
        return "captures"
    from .io.readers import read_header

    try:
        header = read_header(path)
    except FlowReadError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return "labels" if set(LABELS_COLUMNS) <= set(header) else "flows"


def parse_source(
    spec: str | Mapping[str, Any] | SourceSpec,
    *,
    base: str | Path | None = None,
    where: str = "--data",
    check_exists: bool = True,
    kind: str | None = None,
) -> SourceSpec:
    """A :class:`SourceSpec` from its text (``[data:]PATH[=LABEL][,KEY=VALUE]...``) or a TOML table.

    ``base`` resolves relative paths (a config file's folder); without it they
    are taken as given. ``check_exists=False`` skips looking at the file
    (the kind then comes from ``kind`` or the path's form alone).

    >>> parse_source("x.pcap", check_exists=False)
    Traceback (most recent call last):
    ...
    flowsentinel.errors.ConfigError: --data 'x.pcap': captures need a label: write x.pcap=LABEL (e.g. =Benign)
    >>> parse_source("flows.csv,colour=red", check_exists=False)
    Traceback (most recent call last):
    ...
    flowsentinel.errors.ConfigError: --data 'flows.csv,colour=red': unknown option 'colour'; options: dataset, kind, label, max_rows, name, use
    """
    if isinstance(spec, SourceSpec):
        return spec
    if isinstance(spec, Mapping):
        options = dict(spec)
        text = json.dumps(options, default=str)
        path_text = options.pop("path", None)
        if not isinstance(path_text, str) or not path_text.strip():
            raise ConfigError(f"{where} {text}: a source table needs a path (a string)")
    elif isinstance(spec, str):
        text = spec.strip()
        head, *parts = text.split(",")
        options = {}
        for part in parts:
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{where} {text!r}: option {part!r} must be KEY=VALUE")
            options[key.strip()] = value.strip()
        path_text, sep, label = head.rpartition("=")
        if not sep:
            path_text, label = head, None
        elif not label.strip():
            raise ConfigError(f"{where} {text!r}: nothing after '=': write PATH=LABEL")
        if label is not None:
            if "label" in options:
                raise ConfigError(f"{where} {text!r}: the label is given twice")
            options["label"] = label.strip()
        path_text = path_text.strip()
        if not path_text:
            raise ConfigError(f"{where} {text!r}: no path")
    else:
        raise ConfigError(f"{where}: a source is a string or a table, got {type(spec).__name__}")
    return _build(path_text, options, text, base, f"{where} {text!r}", check_exists, kind)


def _build(path_text, options, text, base, where, check_exists, kind) -> SourceSpec:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; options: {', '.join(sorted(_OPTIONS))}")
    path = _resolve(path_text, Path(base) if base is not None else None, where)
    kind = options.get("kind", kind)
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if check_exists:
        if not path.exists():
            hint = ""
            if path_text.startswith(DATA_PREFIX) and not data_dir().is_dir():
                hint = f" (the data folder {data_dir()} does not exist: set FLOWSENTINEL_DATA)"
            raise ConfigError(f"{where}: {path}: no such file or folder{hint}")
        kind = kind or _detect_kind(path, where)
    elif kind is None:
        kind = "captures" if path.name.lower().endswith(CAPTURE_SUFFIXES) or path.suffix == "" else "flows"

    label = options.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ConfigError(f"{where}: label must be a non-empty string, got {label!r}")
    if kind == "captures" and label is None:
        raise ConfigError(f"{where}: captures need a label: write {path_text}=LABEL (e.g. =Benign)")
    if kind == "labels" and label is not None:
        raise ConfigError(f"{where}: a labels file carries a label per capture; drop '={label}'")

    use = options.get("use", "train")
    if isinstance(use, str):
        use = tuple(u.strip() for u in use.split("+"))
    if not isinstance(use, (list, tuple)) or not use or not all(isinstance(u, str) for u in use):
        raise ConfigError(f"{where}: use must be train, check, all or a '+' list of them, got {use!r}")
    use = tuple(USES) if "all" in use else tuple(use)
    bad = [u for u in use if u not in USES]
    if bad:
        raise ConfigError(f"{where}: use {bad[0]!r} is not one of {', '.join(USES)}, all")
    if "use" in options and kind != "labels":
        raise ConfigError(f"{where}: use= selects rows of a labels file; {path_text} is read as {kind}")

    dataset = options.get("dataset")
    if dataset is not None and kind != "flows":
        raise ConfigError(f"{where}: dataset= names the dataset of a flow file; {path_text} is read as {kind}")
    max_rows = options.get("max_rows")
    if max_rows is not None:
        if kind != "flows":
            raise ConfigError(f"{where}: max_rows= limits a flow file; {path_text} is read as {kind}")
        try:
            max_rows = int(max_rows)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: max_rows must be a whole number, got {max_rows!r}") from None
        if max_rows < 1:
            raise ConfigError(f"{where}: max_rows must be at least 1, got {max_rows}")

    name = options.get("name")
    if name is None:
        shown = _display_path(path)
        name = shown if shown != str(path) else path_text
        if kind == "labels":
            name += f"[{'+'.join(use)}]"
        elif kind == "captures":
            name += f"={label}"
    return SourceSpec(path=path, kind=kind, label=label.strip() if label else None, use=use,
                      dataset=dataset, name=str(name), max_rows=max_rows, text=text)


def parse_sources(specs: Iterable, *, base: str | Path | None = None, where: str = "--data") -> list[SourceSpec]:
    """Parse several specs; two sources may not share a name."""
    out = [parse_source(s, base=base, where=where) for s in specs]
    seen = Counter(s.name for s in out)
    twice = [n for n, c in seen.items() if c > 1]
    if twice:
        raise ConfigError(f"{where}: two sources are named {twice[0]!r}; give one a name (,name=...)")
    return out


# ---- settings ------------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/flowsentinel/metered``, else ``~/.cache/flowsentinel/metered``."""
    root = os.environ.get("XDG_CACHE_HOME")
    base = Path(root).expanduser() if root else Path.home() / ".cache"
    return base / "flowsentinel" / "metered"


@dataclass(frozen=True)
class SourcesConfig:
    """How sources are loaded.

    Attributes:
        meter: settings of the meter for captures (part of the cache key).
        cache_dir: where metered captures are cached; ``None``: :func:`default_cache_dir`.
        cache: read and write the cache (off: meter every capture, write nothing).
        taxonomy: a taxonomy file; ``None``: the one shipped with the package.
        rejects_dir: where rejected rows of flow files go (the reader's default: beside the file).
        device_folders: a capture under ``<folder>/<device>/`` with ``<folder>``
            in this list has the device as its group, so all of a device's
            captures lie on one side of a split; ``()`` groups by capture.
    """

    meter: MeterConfig = MeterConfig()
    cache_dir: Path | None = None
    cache: bool = True
    taxonomy: Path | None = None
    rejects_dir: Path | None = None
    device_folders: tuple[str, ...] = ("iot-sentinel",)


# ---- reports -------------------------------------------------------------------
@dataclass
class SourceReport:
    """What one source gave: flows per class, and every capture it could not use."""

    name: str
    kind: str
    path: str
    flows: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    datasets: list[str] = field(default_factory=list)
    captures: int = 0
    metered: int = 0
    from_cache: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    rejected: int = 0
    rejects_path: str | None = None
    label_mismatches: int = 0
    missing_columns: list[str] = field(default_factory=list)
    #: The flows are flowsentinel's synthetic ones (``Dataset`` = ``SYNTHETIC``), not recorded traffic.
    synthetic: bool = False

    def summary(self) -> str:
        text = f"{self.name}: {self.flows:,} flows"
        if self.kind == "flows":
            text += f" ({', '.join(self.datasets) or 'no dataset'})"
            if self.rejected:
                text += f", {self.rejected:,} rows rejected -> {self.rejects_path}"
            if self.label_mismatches:
                text += f", {self.label_mismatches:,} rows whose Label disagrees with their Attack class"
        else:
            text += (f" from {self.captures - len(self.skipped) - len(self.duplicates):,} of {self.captures:,} "
                     f"captures ({self.metered:,} metered, {self.from_cache:,} from the cache)")
            if self.skipped:
                text += f"; {len(self.skipped)} skipped: " + "; ".join(f"{c} ({why})" for c, why in self.skipped.items())
            if self.empty:
                text += f"; {len(self.empty)} gave no flows: " + ", ".join(self.empty)
            if self.duplicates:
                text += f"; {len(self.duplicates)} duplicate(s) left out: " + ", ".join(
                    f"{c} (same packets as {o})" for c, o in self.duplicates.items())
        if self.missing_columns:
            text += f"; lacks {', '.join(self.missing_columns)} (left empty)"
        return text


@dataclass
class LabelledFlows:
    """The flows of every source in one table, and what each source gave.

    ``flows`` has the NF feature columns every source has, the context
    columns (:data:`CONTEXT_COLUMNS`) any source has, ``Label``, ``Attack``
    (the taxonomy class) and :data:`PROVENANCE_COLUMNS`.
    ``dropped_columns``: feature columns some sources had and others lacked,
    left out of the table.
    """

    flows: pd.DataFrame
    reports: list[SourceReport]
    taxonomy: Taxonomy
    dropped_columns: list[str] = field(default_factory=list)

    @property
    def groups(self) -> np.ndarray:
        return self.flows[GROUP_COLUMN].to_numpy(dtype=object)

    def classes(self) -> list[str]:
        """The classes present, in the taxonomy's order."""
        have = set(self.flows[ATTACK_COLUMN].unique())
        return [c for c in self.taxonomy.class_names if c in have]

    def counts(self, by: str = SOURCE_COLUMN) -> pd.DataFrame:
        """Flows per ``by`` value (rows) and class (columns), with totals.

        >>> lf = LabelledFlows(pd.DataFrame({"Source": ["a", "a", "b"], "Attack": ["Benign", "DoS", "DoS"]}),
        ...                    [], load_taxonomy())
        >>> lf.counts().to_dict("index")
        {'a': {'Benign': 1, 'DoS': 1, 'Total': 2}, 'b': {'Benign': 0, 'DoS': 1, 'Total': 1}, 'Total': {'Benign': 1, 'DoS': 2, 'Total': 3}}
        """
        table = pd.crosstab(self.flows[by], self.flows[ATTACK_COLUMN])
        table = table.reindex(columns=self.classes(), fill_value=0)
        order = [r.name for r in self.reports if r.name in table.index] if by == SOURCE_COLUMN else []
        table = table.reindex(order + [i for i in table.index if i not in order])
        table["Total"] = table.sum(axis=1)
        table.loc["Total"] = table.sum(axis=0)
        table.index.name = by
        table.columns.name = None
        return table.astype("int64")

    def counts_table(self, by: str = SOURCE_COLUMN) -> str:
        """:meth:`counts` as a Markdown table.

        >>> lf = LabelledFlows(pd.DataFrame({"Source": ["a", "a", "b"], "Attack": ["Benign", "DoS", "DoS"]}),
        ...                    [], load_taxonomy())
        >>> print(lf.counts_table())
        | Source | Benign | DoS | Total |
        | --- | ---: | ---: | ---: |
        | a | 1 | 1 | 2 |
        | b | 0 | 1 | 1 |
        | Total | 1 | 2 | 3 |
        """
        table = self.counts(by)
        lines = ["| " + " | ".join([by, *map(str, table.columns)]) + " |",
                 "| --- |" + " ---: |" * len(table.columns)]
        for idx, row in table.iterrows():
            lines.append("| " + " | ".join([str(idx), *(f"{int(v):,}" for v in row)]) + " |")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line per source, then the per-source, per-class table."""
        lines = [r.summary() for r in self.reports]
        if self.dropped_columns:
            lines.append(f"left out (not in every source): {', '.join(self.dropped_columns)}")
        return "\n".join(lines + ["", self.counts_table()])

    def info(self) -> dict[str, Any]:
        """A JSON-ready record of the sources (for model manifests and reports)."""
        return {
            "sources": [asdict(r) for r in self.reports],
            "counts": {str(k): {str(c): int(v) for c, v in row.items()} for k, row in self.counts().iterrows()},
            "dropped_columns": list(self.dropped_columns),
            "taxonomy": str(self.taxonomy.path),
            "n_flows": int(len(self.flows)),
            "n_groups": int(self.flows[GROUP_COLUMN].nunique()) if GROUP_COLUMN in self.flows else 0,
            "synthetic": self.synthetic,
        }

    @property
    def synthetic(self) -> bool:
        """Some source holds flowsentinel's synthetic flows."""
        return any(r.synthetic for r in self.reports)


# ---- loading -------------------------------------------------------------------
def load_sources(specs: Iterable[SourceSpec | str | Mapping], config: SourcesConfig = SourcesConfig()) -> LabelledFlows:
    """Every source's labelled flows in one table; see the module docstring.

    Labels are checked against the taxonomy before any capture is metered, so
    an unknown name fails at once.
    """
    specs = parse_sources(specs)
    if not specs:
        raise ConfigError("no sources given: name at least one flow file, labels file or capture folder")
    taxonomy = load_taxonomy(config.taxonomy)
    plans = [_plan(spec, taxonomy, config) for spec in specs]
    cache = _Cache(config)
    seen: dict[str, str] = {}
    frames: list[pd.DataFrame] = []
    reports: list[SourceReport] = []
    for spec, plan in zip(specs, plans):
        if spec.kind == "flows":
            frame, report = _load_flow_file(spec, taxonomy, config)
        else:
            frame, report = _load_captures(spec, plan, cache, seen)
        frames.append(frame)
        reports.append(report)
        log.info("%s", report.summary())
    flows, dropped = _combine(frames, reports)
    if flows.empty:
        raise DataError("the sources gave no flows: " + "; ".join(r.summary() for r in reports))
    return LabelledFlows(flows, reports, taxonomy, dropped)


def _plan(spec: SourceSpec, taxonomy: Taxonomy, config: SourcesConfig) -> list[tuple[Path, str, str, str]]:
    """The captures of a capture or labels source: (path, label as written, class, group)."""
    if spec.kind == "flows":
        if spec.dataset is not None:
            taxonomy.dataset(spec.dataset)
        if spec.label is not None:
            taxonomy.class_of(spec.label, CAPTURES_DATASET, where=spec.name)
        return []
    if spec.kind == "captures":
        cls = taxonomy.class_of(spec.label, CAPTURES_DATASET, where=spec.name)
        if spec.path.is_dir():
            files = sorted(p for p in spec.path.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES))
            if not files:
                raise DataError(f"{spec.path}: no captures ({', '.join(CAPTURE_SUFFIXES)}) in this folder")
        else:
            files = [spec.path]
        return [(p, spec.label, cls, _group(p, config)) for p in files]
    rows = _read_labels(spec)
    names = [label for _, label, _ in rows]
    classes = taxonomy.map_names(names, CAPTURES_DATASET, where=str(spec.path))
    return [(p, label, str(cls), _group(p, config)) for (p, label, _), cls in zip(rows, classes)]


def _read_labels(spec: SourceSpec) -> list[tuple[Path, str, int]]:
    """(capture path, label, line) of the rows of a labels file whose ``use`` is selected."""
    import csv

    try:
        with open(spec.path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in LABELS_COLUMNS if c not in header]
            if missing:
                raise ConfigError(f"{spec.path}: a labels file needs the columns capture, label (and use); "
                                  f"missing {', '.join(missing)}")
            has_use = "use" in header
            rows = []
            for line, row in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                if not row.get("capture"):
                    raise ConfigError(f"{spec.path}, line {line}: empty capture")
                if not row.get("label"):
                    raise ConfigError(f"{spec.path}, line {line}: capture {row['capture']} has no label")
                if has_use and row.get("use") not in spec.use:
                    continue
                capture = Path(row["capture"])
                rows.append((capture if capture.is_absolute() else spec.path.parent / capture, row["label"], line))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{spec.path}: cannot read the labels file: {exc}") from None
    if not has_use and spec.use != USES:
        log.warning("%s has no 'use' column: every capture it lists is read", spec.path)
    if not rows:
        raise DataError(f"{spec.path}: no capture has use {'/'.join(spec.use)}")
    return rows


def _group(path: Path, config: SourcesConfig) -> str:
    """The capture's split unit: its device folder under a device collection, else the capture."""
    shown = _display_path(path)
    parts = Path(shown).parts
    for i, part in enumerate(parts[:-2]):
        if part in config.device_folders:
            return Path(*parts[: i + 2]).as_posix()
    return Path(shown).as_posix()


def _load_captures(spec: SourceSpec, plan, cache: "_Cache", seen: dict[str, str]):
    report = SourceReport(spec.name, spec.kind, str(spec.path), captures=len(plan))
    frames = []
    for i, (path, label, cls, group) in enumerate(plan):
        shown = _display_path(path)
        try:
            digest = _digest(path)
        except OSError as exc:
            report.skipped[shown] = f"cannot read: {exc.strerror or exc}"
            log.warning("%s: skipped, cannot read: %s", shown, exc)
            continue
        if digest in seen:
            report.duplicates[shown] = seen[digest]
            log.warning("%s: left out, the same packets as %s", shown, seen[digest])
            continue
        seen[digest] = shown
        try:
            frame, cached = cache.flows(path, digest)
        except MeterError as exc:
            report.skipped[shown] = str(exc).removeprefix(f"{path}: ")
            log.warning("%s: skipped: %s", shown, report.skipped[shown])
            continue
        report.from_cache += cached
        report.metered += not cached
        if frame.empty:
            report.empty.append(shown)
            log.warning("%s: the meter found no flows in it", shown)
            continue
        frame = frame.copy()
        frame[ATTACK_COLUMN] = cls
        frame[LABEL_COLUMN] = int(cls != BENIGN_CLASS)
        frame[SOURCE_COLUMN] = spec.name
        frame[GROUP_COLUMN] = group
        frame[CAPTURE_COLUMN] = shown
        frame[NAME_COLUMN] = label
        frames.append(frame)
        if (i + 1) % 100 == 0:
            log.info("%s: %d of %d captures", spec.name, i + 1, len(plan))
    flows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    _count(report, flows)
    return flows, report


def _count(report: SourceReport, flows: pd.DataFrame) -> None:
    report.flows = int(len(flows))
    if flows.empty:
        return
    report.classes = {str(k): int(v) for k, v in flows[ATTACK_COLUMN].value_counts().items()}
    report.names = {str(k): int(v) for k, v in flows[NAME_COLUMN].value_counts().items()}


def _load_flow_file(spec: SourceSpec, taxonomy: Taxonomy, config: SourcesConfig):
    from .io.readers import ReadConfig, read_flows

    read_config = ReadConfig(require_labels=spec.label is None, rejects_dir=config.rejects_dir, line_column=_LINE)
    flows, read = read_flows(spec.path, read_config, max_rows=spec.max_rows)
    report = SourceReport(spec.name, spec.kind, str(spec.path), rejected=read.n_rejected,
                          rejects_path=read.rejects_path)
    if spec.label is not None:
        if ATTACK_COLUMN in flows.columns:
            raise ConfigError(f"{spec.text!r}: {spec.path} has its own Attack column; drop '={spec.label}'")
        names = np.full(len(flows), spec.label, dtype=object)
        classes = np.full(len(flows), taxonomy.class_of(spec.label, CAPTURES_DATASET, where=spec.name), dtype=object)
        report.datasets = [CAPTURES_DATASET]
    else:
        names = flows[ATTACK_COLUMN].to_numpy(dtype=object)
        classes, report.datasets = _classes(spec, flows, names, taxonomy)
    labels = (classes != BENIGN_CLASS).astype("int64")
    if LABEL_COLUMN in flows.columns:
        report.label_mismatches = int((flows[LABEL_COLUMN].to_numpy() != labels).sum())
        if report.label_mismatches:
            log.warning("%s: %d row(s) have a Label that disagrees with their Attack class; Label is taken "
                        "from the class", spec.path, report.label_mismatches)
    if DATASET_COLUMN in flows.columns:
        report.synthetic = bool((flows[DATASET_COLUMN] == SYNTHETIC_TAG).any())
        flows = flows.drop(columns=[DATASET_COLUMN])
    flows[ATTACK_COLUMN] = classes
    flows[LABEL_COLUMN] = labels
    flows[SOURCE_COLUMN] = spec.name
    flows[GROUP_COLUMN] = spec.name + ":" + flows.pop(_LINE).astype("int64").astype(str)
    flows[CAPTURE_COLUMN] = ""
    flows[NAME_COLUMN] = names
    _count(report, flows)
    return flows, report


def _classes(spec: SourceSpec, flows: pd.DataFrame, names: np.ndarray, taxonomy: Taxonomy):
    """The class of every row of a flow file, through its dataset's (or datasets') names."""
    key = spec.dataset or taxonomy.identify_file(spec.path)
    if key is not None:
        return taxonomy.map_names(names, key, where=str(spec.path)), [key]
    if DATASET_COLUMN not in flows.columns:
        raise TaxonomyError(
            f"{spec.path}: cannot tell which dataset the file is from (its name fits no dataset of "
            f"{taxonomy.path} and it has no {DATASET_COLUMN} column); name it in the source spec: "
            f"{spec.text},dataset=KEY with KEY one of {', '.join(taxonomy.datasets)}"
        )
    values = flows[DATASET_COLUMN].to_numpy(dtype=object)
    classes = np.empty(len(flows), dtype=object)
    keys = []
    for value in pd.unique(values):
        key = taxonomy.identify_value(str(value))
        if key is None:
            raise TaxonomyError(
                f"{spec.path}: {DATASET_COLUMN} value {value!r} names no dataset of {taxonomy.path}; add it to a "
                f"dataset's dataset_values there, or name the dataset in the source spec (dataset=KEY)"
            )
        rows = values == value
        classes[rows] = taxonomy.map_names(names[rows], key, where=f"{spec.path} ({DATASET_COLUMN} {value})")
        keys.append(key)
    return classes, sorted(set(keys))


def _feature_order(common: set[str]) -> list[str]:
    for features in (V1_FEATURES, V2_FEATURES, V3_FEATURES):
        if common <= set(features):
            return [c for c in features if c in common]
    return sorted(common)


def _combine(frames: list[pd.DataFrame], reports: list[SourceReport]) -> tuple[pd.DataFrame, list[str]]:
    """One table: the feature columns all sources share, context columns any source has."""
    used = [(f, r) for f, r in zip(frames, reports) if not f.empty]
    if not used:
        return pd.DataFrame(), []
    all_features = set(V3_FEATURES) | set(V1_FEATURES)
    have = [set(f.columns) & (all_features - set(CONTEXT_COLUMNS)) for f, _ in used]
    common = set.intersection(*have)
    dropped = sorted(set.union(*have) - common, key=V3_FEATURES.index)
    if dropped:
        log.warning("left out of the table, as not every source has them: %s", ", ".join(dropped))
    context = [c for c in CONTEXT_COLUMNS if any(c in f.columns for f, _ in used)]
    # Schema order, so that a table read back from disk is recognised and reads like the NF files.
    columns = _feature_order(common | set(context)) + [LABEL_COLUMN, ATTACK_COLUMN, *PROVENANCE_COLUMNS]
    parts = []
    for frame, report in used:
        report.missing_columns = [c for c in context if c not in frame.columns]
        parts.append(frame.reindex(columns=columns))
    return pd.concat(parts, ignore_index=True), dropped


# ---- metering and its cache ---------------------------------------------------------
def _digest(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


class _Cache:
    """Metered flows of captures, one Parquet file per (content, meter settings, versions)."""

    def __init__(self, config: SourcesConfig):
        self.config = config
        self.dir = Path(config.cache_dir) if config.cache_dir is not None else default_cache_dir()
        settings = {"meter": asdict(config.meter), "flowsentinel": _version("flowsentinel"),
                    "nfstream": _version("nfstream")}
        self.settings_key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        self.writable = config.cache

    def _file(self, digest: str) -> Path:
        return self.dir / f"{digest}-{self.settings_key}.parquet"

    def flows(self, path: Path, digest: str) -> tuple[pd.DataFrame, bool]:
        """The capture's flows and whether they came from the cache."""
        file = self._file(digest)
        if self.config.cache and file.is_file():
            try:
                return pd.read_parquet(file), True
            except Exception as exc:  # pyarrow raises several types for a damaged file
                log.warning("%s: unreadable cache file (%s); metering again", file, exc)
        from .metering import meter_capture

        frame = meter_capture(path, self.config.meter).to_pandas()
        frame = frame[[c for c in frame.columns if c in set(V2_FEATURES) | set(V1_FEATURES) | set(TIME_COLUMNS)]]
        self._write(file, frame)
        return frame, False

    def _write(self, file: Path, frame: pd.DataFrame) -> None:
        if not self.writable:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".partial")
            os.close(fd)
            try:
                frame.to_parquet(tmp, index=False)
                os.replace(tmp, file)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except OSError as exc:
            self.writable = False
            log.warning("cannot write the metering cache in %s (%s); captures will be metered on every run "
                        "(set SourcesConfig.cache_dir)", self.dir, exc)
