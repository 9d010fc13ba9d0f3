"""Train/validation/test splits: ``paper``, the duplicate-aware ``dedup``, and ``group``.

* ``paper``: a stratified random 70/15/15 split of all rows, as the
  literature does. On NF-BoT-IoT-v2 about 93% of rows repeat another row's
  feature vector, so the same vectors land on both sides of this split.
* ``dedup``: identical feature vectors are collapsed to one row before the
  stratified split, so no test vector was seen in training.
* ``group``: every group (a capture, a device, a row of an NF flow file: the
  ``Group`` column that :func:`flowsentinel.sources.load_sources` writes)
  lies wholly on one side, so no test flow comes from a capture or device
  that trained the model. Groups are stratified by class: the groups of each
  class are dealt to the parts so that each part's share of that class's
  *flows* comes near the fractions (:func:`group_split`).

:func:`leave_groups_out` sets whole groups aside (a device, an application's
capture) for held-out evaluation.

The stratified rule itself is :func:`flowsentinel.sampling.stratified_split`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..choices import PROTOCOLS
from ..errors import ConfigError, DataError
from ..sampling import Split, stratified_split

__all__ = [
    "Split",
    "HeldOut",
    "stratified_split",
    "dedup_index",
    "group_split",
    "leave_groups_out",
    "make_split",
    "PROTOCOLS",
]

log = logging.getLogger(__name__)

#: The columns of a flow table that name each flow's group and source (see flowsentinel.sources).
GROUP_COLUMN = "Group"
SOURCE_COLUMN = "Source"
# Random deals of a class's groups tried by group_split; the one nearest the fractions wins.
_DEALS = 32


def dedup_index(features: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, dict]:
    """Rows that keep the first occurrence of each distinct feature vector.

    Also reports how many distinct vectors carry more than one label (those
    can never be classified perfectly, whatever the model).
    """
    key = pd.util.hash_pandas_object(features, index=False).to_numpy()
    frame = pd.DataFrame({"key": key, "y": y})
    first = ~frame.duplicated("key", keep="first").to_numpy()
    labels_per_vector = frame.groupby("key")["y"].nunique()
    info = {
        "n_rows": int(len(frame)),
        "n_unique_vectors": int(first.sum()),
        "duplicate_fraction": float(1 - first.sum() / max(len(frame), 1)),
        "vectors_with_conflicting_labels": int((labels_per_vector > 1).sum()),
    }
    return np.flatnonzero(first), info


def make_split(
    flows: pd.DataFrame,
    y: np.ndarray,
    protocol: str,
    feature_columns: list[str],
    seed: int = 0,
    fractions=(0.7, 0.15, 0.15),
    *,
    groups: np.ndarray | None = None,
) -> Split:
    """Indices into ``flows`` for the chosen protocol.

    ``groups`` (for ``group``): each row's group; by default the table's
    ``Group`` column. The ``group`` protocol stratifies within each source
    when the table has a ``Source`` column.
    """
    if protocol == "paper":
        split = stratified_split(y, fractions, seed)
        split.protocol = "paper"
        split.info = {"n_rows": int(len(y))}
        return split
    if protocol == "dedup":
        keep, info = dedup_index(flows[feature_columns], y)
        inner = stratified_split(y[keep], fractions, seed)
        split = Split(keep[inner.train], keep[inner.val], keep[inner.test], "dedup", info)
        return split
    if protocol == "group":
        if groups is None:
            if GROUP_COLUMN not in flows.columns:
                raise ConfigError(
                    f"the group protocol needs each flow's group: a {GROUP_COLUMN!r} column, as "
                    "flowsentinel.sources.load_sources writes it, or groups=..."
                )
            groups = flows[GROUP_COLUMN].to_numpy(dtype=object)
        strata = flows[SOURCE_COLUMN].to_numpy(dtype=object) if SOURCE_COLUMN in flows.columns else None
        return group_split(y, groups, fractions, seed, strata=strata)
    raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def group_split(
    y: np.ndarray,
    groups: np.ndarray,
    fractions=(0.7, 0.15, 0.15),
    seed: int = 0,
    *,
    strata: np.ndarray | None = None,
) -> Split:
    """A split in which every group lies wholly in one part, stratified by class.

    Each group is filed under its most frequent class (ties: the first in
    sorted order) and, when ``strata`` is given (each row's source, say),
    under its stratum too, so that every source's groups of a class are
    spread over the parts: four attack captures then give one to test even
    when an NF file brings thousands of rows of the same class. A class
    (within a stratum) with at least 3 groups has one in each part; its
    groups are dealt at random to the parts by their share of the class's
    flows, and of :data:`_DEALS` such deals the one whose flow shares come
    nearest the fractions is kept (see :func:`_best_deal`). A class with
    fewer than 3 groups stays in training, with a warning (as
    :func:`stratified_split` does for rows).

    >>> y = np.array(["a"] * 6 + ["b"] * 6)
    >>> g = np.array(["g1", "g1", "g2", "g3", "g4", "g5", "h1", "h2", "h3", "h3", "h4", "h5"])
    >>> s = group_split(y, g, seed=0)
    >>> sorted(set(s.train) | set(s.val) | set(s.test)) == list(range(12))
    True
    >>> all(len({*g[part]} & {*g[other]}) == 0 for part, other in [(s.train, s.test), (s.train, s.val), (s.val, s.test)])
    True
    """
    y = np.asarray(y)
    groups = np.asarray(groups, dtype=object)
    if len(y) != len(groups):
        raise DataError(f"{len(y)} labels but {len(groups)} groups: every flow needs a group")
    if len(y) and pd.isna(groups).any():
        raise DataError(f"{int(pd.isna(groups).sum())} flow(s) have no group")
    rng = np.random.default_rng(seed)
    codes, names = pd.factorize(pd.Series(groups, dtype=object))
    n_groups = len(names)
    sizes = np.bincount(codes, minlength=n_groups)
    # Each group's class: its most frequent one.
    pairs = pd.DataFrame({"g": codes, "y": y}).value_counts().reset_index(name="n")
    pairs = pairs.sort_values(["g", "n", "y"], ascending=[True, False, True]).drop_duplicates("g")
    group_class = pd.Series(pairs["y"].to_numpy(), index=pairs["g"].to_numpy()).reindex(range(n_groups)).to_numpy()
    mixed = int((pd.DataFrame({"g": codes, "y": y}).groupby("g")["y"].nunique() > 1).sum())
    if strata is not None:
        strata = np.asarray(strata, dtype=object)
        if len(strata) != len(y):
            raise DataError(f"{len(y)} labels but {len(strata)} strata")
        first = np.unique(codes, return_index=True)[1]
        group_stratum = strata[first]
    else:
        group_stratum = np.full(n_groups, "", dtype=object)
    part_of = np.zeros(n_groups, dtype=np.int64)
    kept_in_train: list[str] = []
    target = np.asarray(fractions, dtype="float64")
    cells = pd.DataFrame({"s": group_stratum, "c": group_class}).groupby(["s", "c"], sort=False).indices
    for (stratum, cls), members in cells.items():
        if len(members) < 3:
            where = f"{stratum}: " if stratum else ""
            kept_in_train.append(f"{where}{cls}")
            log.warning("%sclass %r has only %d group(s): all kept for training, none to test on",
                        where, cls, len(members))
            continue
        part_of[members] = _best_deal(members, sizes, target, rng)
    row_part = part_of[codes]
    train, val, test = (np.flatnonzero(row_part == k) for k in range(3))
    info = {
        "n_rows": int(len(y)),
        "n_groups": int(n_groups),
        "groups": {name: int((part_of == k).sum()) for k, name in enumerate(("train", "val", "test"))},
        "groups_with_several_classes": mixed,
        "classes_only_in_train": kept_in_train,
    }
    return Split(train, val, test, "group", info)


def _best_deal(members: np.ndarray, sizes: np.ndarray, target: np.ndarray, rng) -> np.ndarray:
    """Parts (0 train, 1 val, 2 test) for one class's groups; each part gets at least one.

    A deal: the first two groups of a random order seed test and validation;
    the rest, in that order, fill train, validation and test up to what each
    still lacks of its share, a group going where the middle of its flows
    falls. Vectorised, so a class of 100,000 one-row groups costs little.
    """
    w = sizes[members].astype("float64")
    total = w.sum()
    best, best_err = None, np.inf
    for _ in range(_DEALS):
        order = rng.permutation(len(members))
        parts = np.empty(len(members), dtype=np.int64)
        parts[order[0]], parts[order[1]] = 2, 1
        rest = order[2:]
        want = np.maximum(target * total - np.array([0.0, w[order[1]], w[order[0]]]), 0.0)
        if want.sum() <= 0:
            want = target.copy()
        edges = np.cumsum(want)[:2] / want.sum()
        middle = (np.cumsum(w[rest]) - w[rest] / 2) / w[rest].sum()
        parts[rest] = np.searchsorted(edges, middle, side="right")
        if not (parts == 0).any():
            continue
        err = float(np.abs(np.bincount(parts, weights=w, minlength=3) / total - target).sum())
        if err < best_err:
            best, best_err = parts, err
    if best is None:
        # One group holds nearly all flows: it trains, the two smallest validate and test.
        rank = np.argsort(w, kind="stable")
        best = np.zeros(len(members), dtype=np.int64)
        best[rank[0]], best[rank[1]] = 1, 2
    return best


@dataclass
class HeldOut:
    """Rows kept for splitting and rows set aside, with the groups each pattern matched."""

    keep: np.ndarray
    held: np.ndarray
    matched: dict[str, list[str]]


def leave_groups_out(groups: np.ndarray, patterns: list[str] | tuple[str, ...]) -> HeldOut:
    """Set aside every flow whose group matches one of ``patterns`` (exact names or shell globs).

    For held-out evaluation by device (``pcaps/benign/iot-sentinel/Aria``) or
    by application capture (``pcaps/benign/ndpi-apps/*netflix*``). A pattern
    that matches no group is an error, so that a typo never holds out nothing.

    >>> g = np.array(["dev/a", "dev/a", "dev/b", "app/x.pcap"])
    >>> h = leave_groups_out(g, ["dev/a", "app/*"])
    >>> h.keep.tolist(), h.held.tolist(), h.matched
    ([2], [0, 1, 3], {'dev/a': ['dev/a'], 'app/*': ['app/x.pcap']})
    >>> leave_groups_out(g, ["dev/c"])
    Traceback (most recent call last):
    ...
    flowsentinel.errors.ConfigError: held-out group pattern 'dev/c' matches no group; groups look like: app/x.pcap, dev/a, dev/b
    """
    import fnmatch

    groups = np.asarray(groups, dtype=object)
    names = sorted({str(g) for g in pd.unique(groups)})
    matched: dict[str, list[str]] = {}
    chosen: set[str] = set()
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise ConfigError(f"held-out group pattern {pattern!r} matches no group; groups look like: {shown}")
        matched[pattern] = hits
        chosen.update(hits)
    held = np.isin(groups.astype(str), sorted(chosen))
    return HeldOut(np.flatnonzero(~held), np.flatnonzero(held), matched)
