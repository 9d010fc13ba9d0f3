"""One set of classes for every labelled dataset: the class taxonomy.

Each NF dataset names its attacks its own way (NF-BoT-IoT ``DDoS``,
NF-CSE-CIC-IDS2018 ``DDOS attack-HOIC``, NF-ToN-IoT ``ddos``); training on
several at once needs them on one set of classes. The mapping is a data file,
``src/flowsentinel/data/taxonomy.toml`` (documented in ``docs/taxonomy.md``),
and this module loads, checks and applies it.

Names are matched after folding case, reading ``_`` as a space and collapsing
white space (:func:`normalise_name`), and never otherwise: an attack name the
file does not list raises :class:`~flowsentinel.errors.TaxonomyError` naming
the name, the dataset and the file to edit, so no dataset ever brings a
silent class of its own.

>>> tax = load_taxonomy()
>>> tax.class_of("DDOS attack-HOIC", "nf-cse-cic-ids2018")
'DDoS'
>>> tax.class_of("Brute_Force_-Web", "nf-cse-cic-ids2018")
'BruteForce'
>>> tax.map_names(["Benign", "ddos", "scanning"], "nf-ton-iot").tolist()
['Benign', 'DDoS', 'Reconnaissance']
>>> tax.class_of("Heartbleed", "nf-cse-cic-ids2018")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
flowsentinel.errors.TaxonomyError: attack name 'Heartbleed' of dataset nf-cse-cic-ids2018 (...) is not in the class taxonomy; add it under [datasets.nf-cse-cic-ids2018.names] in .../taxonomy.toml, mapped to one of: Benign, DoS, ...
"""

from __future__ import annotations

import fnmatch
import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import TaxonomyError
from .paths import package_file
from .schema import BENIGN_CLASS

__all__ = [
    "TAXONOMY_FILE",
    "DatasetNames",
    "Taxonomy",
    "load_taxonomy",
    "normalise_name",
]

#: The taxonomy shipped with the package.
TAXONOMY_FILE = package_file("taxonomy.toml")

_FORMAT = 1
_DATASET_KEYS = frozenset({"title", "files", "dataset_values", "names"})
_SPACES = re.compile(r"\s+")


def normalise_name(name: object) -> str:
    """The form in which attack names are compared: case folded, ``_`` as space, spaces collapsed.

    >>> normalise_name("  Brute_Force_-Web ")
    'brute force -web'
    >>> normalise_name("DDoS attacks-LOIC-HTTP") == normalise_name("DDOS_ATTACKS-LOIC-HTTP")
    True
    """
    return _SPACES.sub(" ", str(name).replace("_", " ")).strip().casefold()


@dataclass(frozen=True)
class DatasetNames:
    """One dataset family's attack names and how flowsentinel recognises its files.

    ``names`` maps each published spelling to its class; ``index`` maps the
    normalised spelling to the class (built by :meth:`Taxonomy.from_dict`).
    """

    key: str
    title: str
    files: tuple[str, ...]
    dataset_values: tuple[str, ...]
    names: Mapping[str, str]
    index: Mapping[str, str] = field(repr=False, default_factory=dict)

    def matches_file(self, path: str | Path) -> bool:
        """Whether a file name fits one of this dataset's ``files`` patterns (case folded)."""
        name = Path(path).name.casefold()
        return any(fnmatch.fnmatchcase(name, pattern.casefold()) for pattern in self.files)


@dataclass(frozen=True)
class Taxonomy:
    """The classes (in report order, with their descriptions) and every dataset's names."""

    path: Path
    classes: Mapping[str, str]
    datasets: Mapping[str, DatasetNames]

    # ---- building ----------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> "Taxonomy":
        """Read and check a taxonomy file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TaxonomyError(f"{path}: cannot read the class taxonomy: {exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TaxonomyError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Mapping, path: str | Path = "<taxonomy>") -> "Taxonomy":
        """Check parsed taxonomy data (the TOML file's tables) and index its names."""
        path = Path(path)
        if data.get("format") != _FORMAT:
            raise TaxonomyError(f"{path}: format must be {_FORMAT}, got {data.get('format')!r}")
        classes = data.get("classes")
        if not isinstance(classes, Mapping) or not classes:
            raise TaxonomyError(f"{path}: [classes] must list the classes, each with a description")
        bad = [k for k, v in classes.items() if not isinstance(v, str) or not v.strip()]
        if bad:
            raise TaxonomyError(f"{path}: [classes] {', '.join(bad)}: each class needs a description (a string)")
        if BENIGN_CLASS not in classes:
            raise TaxonomyError(f"{path}: [classes] must include {BENIGN_CLASS!r}")
        tables = data.get("datasets")
        if not isinstance(tables, Mapping) or not tables:
            raise TaxonomyError(f"{path}: no [datasets.*] tables")
        datasets = {key: _dataset(key, table, classes, path) for key, table in tables.items()}
        owner: dict[str, str] = {}
        for entry in datasets.values():
            for value in entry.dataset_values:
                if value in owner:
                    raise TaxonomyError(
                        f"{path}: Dataset value {value!r} is listed by both [datasets.{owner[value]}] "
                        f"and [datasets.{entry.key}]; a value must name one dataset"
                    )
                owner[value] = entry.key
        return cls(path, dict(classes), datasets)

    # ---- looking up --------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:
        """Every class, in report order (as the file lists them)."""
        return tuple(self.classes)

    def dataset(self, key: str) -> DatasetNames:
        """A dataset's names by its key (``nf-bot-iot``, ``captures``, ...)."""
        try:
            return self.datasets[key]
        except KeyError:
            raise TaxonomyError(
                f"unknown dataset {key!r} in the class taxonomy {self.path}; known: {', '.join(self.datasets)}"
            ) from None

    def identify_file(self, path: str | Path) -> str | None:
        """The dataset whose ``files`` patterns fit this file name, or ``None``.

        >>> load_taxonomy().identify_file("/data/NF-BoT-IoT-v2-sample.csv.gz")
        'nf-bot-iot'
        >>> load_taxonomy().identify_file("flows.csv") is None
        True
        """
        hits = [key for key, entry in self.datasets.items() if entry.matches_file(path)]
        if len(hits) > 1:
            raise TaxonomyError(
                f"{path}: the file name fits the patterns of several datasets ({', '.join(hits)}) in "
                f"{self.path}; name one in the source spec (dataset=KEY)"
            )
        return hits[0] if hits else None

    def identify_value(self, value: str) -> str | None:
        """The dataset a ``Dataset`` column value names, or ``None``."""
        for key, entry in self.datasets.items():
            if value in entry.dataset_values:
                return key
        return None

    def class_of(self, name: str, dataset: str, where: str | None = None) -> str:
        """The class of one attack name of ``dataset``."""
        return str(self.map_names([name], dataset, where)[0])

    def map_names(self, names: Iterable[str], dataset: str, where: str | None = None) -> np.ndarray:
        """The class of every attack name (an object array, in order).

        Every distinct name is looked up once. Unknown names raise
        :class:`TaxonomyError` listing them all with their counts.
        """
        entry = self.dataset(dataset)
        values = names.astype(object) if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
        codes, uniques = pd.factorize(values)
        mapped = []
        unknown: list[str] = []
        for name in uniques:
            cls = entry.index.get(normalise_name(name))
            if cls is None:
                unknown.append(str(name))
            mapped.append(cls)
        if unknown:
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            per_name = {str(n): int(c) for n, c in zip(uniques, counts)}
            raise self.unknown_error(unknown, entry, where, per_name if len(codes) > 1 else None)
        if (codes < 0).any():
            raise TaxonomyError(f"{where or dataset}: {int((codes < 0).sum())} flow(s) have no attack name")
        return np.asarray(mapped, dtype=object)[codes]

    def unknown_error(
        self, names: list[str], entry: DatasetNames, where: str | None, counts: Mapping[str, int] | None = None
    ) -> TaxonomyError:
        """The error for attack names a dataset's table lacks."""
        shown = ", ".join(
            repr(n) + (f" ({counts[n]:,} flows)" if counts else "") for n in names[:10]
        ) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        what = "attack name" if len(names) == 1 else "attack names"
        verb = "is" if len(names) == 1 else "are"
        prefix = f"{where}: " if where else ""
        return TaxonomyError(
            f"{prefix}{what} {shown} of dataset {entry.key} ({entry.title}) {verb} not in the class taxonomy; "
            f"add {'it' if len(names) == 1 else 'them'} under [datasets.{entry.key}.names] in {self.path}, "
            f"mapped to one of: {', '.join(self.classes)}"
        )


def _strings(value, what: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TaxonomyError(f"{path}: {what} must be a list of strings, got {value!r}")
    return tuple(value)


def _dataset(key: str, table, classes: Mapping[str, str], path: Path) -> DatasetNames:
    where = f"{path}: [datasets.{key}]"
    if not isinstance(table, Mapping):
        raise TaxonomyError(f"{where} must be a table")
    extra = sorted(set(table) - _DATASET_KEYS)
    if extra:
        raise TaxonomyError(f"{where}: unknown key(s) {', '.join(extra)}; expected {', '.join(sorted(_DATASET_KEYS))}")
    title = table.get("title")
    if not isinstance(title, str) or not title.strip():
        raise TaxonomyError(f"{where}: needs a title (a string)")
    names = table.get("names")
    if not isinstance(names, Mapping) or not names:
        raise TaxonomyError(f"{where}: needs a [datasets.{key}.names] table of attack name = class")
    index: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for name, cls in names.items():
        if cls not in classes:
            raise TaxonomyError(
                f"{where}.names: {name!r} maps to {cls!r}, which is not a class; classes: {', '.join(classes)}"
            )
        norm = normalise_name(name)
        if norm in index and index[norm] != cls:
            raise TaxonomyError(
                f"{where}.names: {spelled[norm]!r} and {name!r} are the same name once case and spaces are "
                f"folded, but map to {index[norm]!r} and {cls!r}"
            )
        index[norm] = cls
        spelled[norm] = name
    return DatasetNames(
        key=key,
        title=title,
        files=_strings(table.get("files", []), f"[datasets.{key}].files", path),
        dataset_values=_strings(table.get("dataset_values", []), f"[datasets.{key}].dataset_values", path),
        names=dict(names),
        index=index,
    )


@functools.lru_cache(maxsize=8)
def _cached(path: Path, mtime_ns: int, size: int) -> Taxonomy:
    return Taxonomy.from_file(path)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    """The taxonomy in ``path``, by default the one shipped with the package (read once)."""
    path = Path(path) if path is not None else TAXONOMY_FILE
    try:
        stat = path.stat()
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read the class taxonomy: {exc}") from None
    # Keyed by modification time and size, so that an edited file is read again.
    return _cached(path.resolve(), stat.st_mtime_ns, stat.st_size)
