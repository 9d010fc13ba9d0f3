#!/usr/bin/env python3
"""Train/serve parity: each NF v2 column of metered benign flows against the NF files' benign flows.

A deployed model scores flows from flowsentinel's meter; the published NF
files were made by nProbe. A column whose values tell the two tools apart
lets a model learn "metered means benign". For every NF v2 column this
script meters the ``use = train`` captures of ``pcaps/labels.csv`` (through
the sources cache) and compares their benign flows with the benign flows of
the NF-BoT-IoT-v2 and NF-CSE-CIC-IDS2018-v2 samples:

* share of zeros and the median and 99th percentile, per population;
* **tool AUC**: how well a one-column decision tree tells a metered flow from
  an NF-file flow (ROC-AUC, out of fold, folds that keep each capture or
  device whole): 0.5, the column says nothing about the tool; 1.0, it names
  the tool;
* **same-tool AUC**: the same tree telling the BoT benign flows from the CIC
  benign flows, both nProbe's: how far two networks' traffic differs under one
  tool. A tool AUC well above it points at the tool rather than the traffic
  (the metered captures are other networks' traffic too);
* **class AUC**: the same tree telling benign from attack flows inside each NF
  file, so that a column that names the tool *and* the class in the files
  stands out;
* for the columns with a known repair (nProbe's wrapped durations unwrapped
  as the feature pipeline does; ICMP fields zeroed on non-ICMP flows) an
  extra row with the repair applied to every population.

It reports evidence; it trains no detector and chooses no columns. Prints one
Markdown table, rows by their highest tool AUC.

    PYTHONPATH=src python scripts/parity_table.py [--cache-dir DIR] [--folds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.features import DURATION_COLUMNS, WRAP_MS, WRAP_THRESHOLD_MS  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402
from flowsentinel.schema import (  # noqa: E402
    ADDRESS_COLUMNS,
    ATTACK_COLUMN,
    BENIGN_CLASS,
    ICMP_FIELD_COLUMNS,
    ICMP_PROTOCOLS,
    V2_FEATURES,
)
from flowsentinel.sources import GROUP_COLUMN, SourcesConfig, load_sources  # noqa: E402

NF_FILES = {
    "BoT": "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz",
    "CIC": "nf-cse-cic-ids2018-v2/NF-CSE-CIC-IDS2018-v2-sample.csv.gz",
}
COLUMNS = [c for c in V2_FEATURES if c not in ADDRESS_COLUMNS]
# Attack rows drawn from each NF file for the class AUC (the BoT sample has 222k).
MAX_ATTACKS = 20_000


def read_nf(path: Path) -> pd.DataFrame:
    """The published values, as the file holds them.

    Read with pandas rather than FlowReader: the comparison is of the numbers
    nProbe wrote, and the table must not depend on which columns the reader
    requires (the CIC sample has no address columns).
    """
    frame = pd.read_csv(path, usecols=lambda c: c in set(COLUMNS) | {ATTACK_COLUMN})
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SystemExit(f"{path}: missing NF v2 column(s) {', '.join(missing)}")
    return frame


def repaired(column: str, frame: pd.DataFrame) -> np.ndarray | None:
    """The column after its known repair, or None where it has none."""
    values = frame[column].to_numpy(dtype="float64")
    if column in DURATION_COLUMNS:
        # As FeaturePipeline(unwrap_durations=True) reads them: the distance below the 32-bit wrap.
        return np.where(values >= WRAP_THRESHOLD_MS, np.maximum(WRAP_MS - values, 0.0), values)
    if column in ICMP_FIELD_COLUMNS:
        icmp = np.isin(frame["PROTOCOL"].to_numpy(dtype="float64"), ICMP_PROTOCOLS)
        return np.where(icmp, values, 0.0)
    return None


def make_folds(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds, keeping groups whole where given; computed once per comparison."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is None:
        return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(y, y))
    return list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(y, y, groups))


def one_column_auc(x: np.ndarray, y: np.ndarray, folds, seed: int) -> float:
    """Out-of-fold ROC-AUC of a shallow tree on one column."""
    from sklearn.metrics import roc_auc_score
    from sklearn.tree import DecisionTreeClassifier

    x = x.reshape(-1, 1)
    scores = np.zeros(len(y))
    for train, test in folds:
        tree = DecisionTreeClassifier(max_depth=4, min_samples_leaf=20, class_weight="balanced", random_state=seed)
        tree.fit(x[train], y[train])
        scores[test] = tree.predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y, scores))


def describe(values: np.ndarray) -> tuple[float, float, float]:
    return float((values == 0).mean() * 100), float(np.median(values)), float(np.quantile(values, 0.99))


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5:
        return f"{v:.2e}"
    return f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.2g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, help="metering cache (default: the user's cache folder)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("flowsentinel.metering").setLevel(logging.ERROR)
    root = data_dir()
    paths = {k: root / v for k, v in NF_FILES.items()}
    absent = [str(p) for p in [*paths.values(), root / "pcaps/labels.csv"] if not p.exists()]
    if absent:
        print(f"not found: {', '.join(absent)}; set FLOWSENTINEL_DATA to the shared data folder", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    metered = load_sources(["data:pcaps/labels.csv"], SourcesConfig(cache_dir=args.cache_dir))
    meter = metered.flows[metered.flows[ATTACK_COLUMN] == BENIGN_CLASS].reset_index(drop=True)
    nf = {k: read_nf(p) for k, p in paths.items()}
    benign = {k: f[f[ATTACK_COLUMN] == BENIGN_CLASS].reset_index(drop=True) for k, f in nf.items()}
    rng = np.random.default_rng(args.seed)
    attacks = {}
    for k, f in nf.items():
        rows = np.flatnonzero(f[ATTACK_COLUMN].to_numpy() != BENIGN_CLASS)
        attacks[k] = f.iloc[np.sort(rng.permutation(rows)[:MAX_ATTACKS])].reset_index(drop=True)

    def values(column: str, frame: pd.DataFrame, repair: bool) -> np.ndarray:
        return repaired(column, frame) if repair else frame[column].to_numpy(dtype="float64")

    # Metered flows of one capture (or device) stay in one fold; NF rows have no capture identity.
    tool_y = {k: np.r_[np.ones(len(meter)), np.zeros(len(b))] for k, b in benign.items()}
    tool_folds = {
        k: make_folds(tool_y[k], np.concatenate([meter[GROUP_COLUMN].to_numpy(dtype=object),
                                                 np.array([f"{k}:{i}" for i in range(len(b))], dtype=object)]),
                      args.folds, args.seed)
        for k, b in benign.items()
    }
    class_y = {k: np.r_[np.zeros(len(b)), np.ones(len(attacks[k]))] for k, b in benign.items()}
    class_folds = {k: make_folds(class_y[k], None, args.folds, args.seed) for k in benign}
    (a, b) = benign  # the same-tool comparison: the two NF files' benign flows
    same_y = np.r_[np.ones(len(benign[a])), np.zeros(len(benign[b]))]
    same_folds = make_folds(same_y, None, args.folds, args.seed)

    rows = []
    for column in COLUMNS:
        for repair in (False, True):
            if repair:
                fixed = [repaired(column, f) for f in (meter, *benign.values(), *attacks.values())]
                raw = [f[column].to_numpy(dtype="float64") for f in (meter, *benign.values(), *attacks.values())]
                if fixed[0] is None or all(np.array_equal(a, b) for a, b in zip(fixed, raw)):
                    continue  # no repair, or one that changes no value here
            m = values(column, meter, repair)
            stats = {"meter": describe(m), **{k: describe(values(column, b, repair)) for k, b in benign.items()}}
            tool = {k: one_column_auc(np.concatenate([m, values(column, b, repair)]), tool_y[k], tool_folds[k],
                                      args.seed) for k, b in benign.items()}
            same = one_column_auc(np.concatenate([values(column, benign[a], repair), values(column, benign[b], repair)]),
                                  same_y, same_folds, args.seed)
            cls = {k: one_column_auc(np.concatenate([values(column, b, repair), values(column, attacks[k], repair)]),
                                     class_y[k], class_folds[k], args.seed) for k, b in benign.items()}
            rows.append((column + (" (repaired)" if repair else ""), stats, tool, same, cls))
    rows.sort(key=lambda r: -max(r[2].values()))
    seconds = time.perf_counter() - t0

    pops = ["meter", *benign]
    print(f"Benign flows: meter {len(meter):,} from {meter[GROUP_COLUMN].nunique()} capture groups "
          f"(pcaps/labels.csv, use=train), "
          + ", ".join(f"{k} {len(b):,}" for k, b in benign.items())
          + "; attack flows for the class AUC: " + ", ".join(f"{k} {len(a):,}" for k, a in attacks.items())
          + f". {args.folds} folds, seed {args.seed}, {seconds:.0f} s.")
    print()
    print("| column | zeros % (" + " / ".join(pops) + ") | median (" + " / ".join(pops) + ") | p99 ("
          + " / ".join(pops) + ") | tool AUC meter vs " + " / ".join(benign) + f" | same-tool AUC {a} vs {b} "
          + "| class AUC in " + " / ".join(benign) + " |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for column, stats, tool, same, cls in rows:
        zeros = " / ".join(f"{stats[p][0]:.0f}" for p in pops)
        median = " / ".join(fmt(stats[p][1]) for p in pops)
        p99 = " / ".join(fmt(stats[p][2]) for p in pops)
        print(f"| {column} | {zeros} | {median} | {p99} | "
              + " / ".join(f"{tool[k]:.2f}" for k in benign) + f" | {same:.2f} | "
              + " / ".join(f"{cls[k]:.2f}" for k in benign) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
