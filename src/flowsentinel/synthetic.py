"""Synthetic flows in the NF v2 schema, for demos and fast tests.

The generator draws every column independently per class from a profile of
the real NF-BoT-IoT-v2 sample (``data/synthetic_profile.json``, made by
``scripts/fit_synthetic_profile.py``): the ten most frequent values with their
frequencies, and a log-normal fit for the remaining mass. It holds summary
statistics only, no real rows. Frames it returns carry
``Dataset = "SYNTHETIC"`` so that no output can pass them off as real traffic.

>>> flows = generate_flows(1000, random_state=1)
>>> sorted(flows["Attack"].unique())
['Benign', 'DDoS', 'DoS', 'Reconnaissance', 'Theft']
>>> set(flows["Dataset"])
{'SYNTHETIC'}
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from .schema import (
    ADDRESS_COLUMNS,
    ATTACK_COLUMN,
    DATASET_COLUMN,
    LABEL_COLUMN,
    V2_FEATURES,
    get_schema,
)

__all__ = ["SYNTHETIC_TAG", "generate_flows", "load_profile"]

SYNTHETIC_TAG = "SYNTHETIC"


@lru_cache(maxsize=1)
def load_profile() -> dict:
    text = resources.files("flowsentinel").joinpath("data/synthetic_profile.json").read_text()
    return json.loads(text)


def _class_counts(n: int, shares: dict[str, float], min_per_class: int) -> dict[str, int]:
    counts = {c: max(min_per_class, int(round(n * s))) for c, s in shares.items()}
    # Give the rounding difference to the largest class.
    largest = max(counts, key=counts.get)
    counts[largest] = max(min_per_class, counts[largest] + n - sum(counts.values()))
    return counts


def generate_flows(
    n_flows: int = 10_000,
    *,
    random_state: int | None = 0,
    balance: float = 0.0,
    min_per_class: int = 20,
) -> pd.DataFrame:
    """Draw ``n_flows`` synthetic NF v2 flows with ``Label``/``Attack``.

    ``balance`` in [0, 1] moves class shares from the real ones (0) toward
    equal shares (1); ``min_per_class`` keeps rare classes present.
    """
    rng = np.random.default_rng(random_state)
    profile = load_profile()
    classes = profile["classes"]
    k = len(classes)
    shares = {c: (1 - balance) * v["share"] + balance / k for c, v in classes.items()}
    counts = _class_counts(n_flows, shares, min_per_class)
    schema = get_schema("v2")
    parts = []
    for cls, count in counts.items():
        spec = classes[cls]
        cols: dict[str, np.ndarray] = {}
        for col in V2_FEATURES:
            entry = spec["columns"][col]
            values = entry["values"]
            p = np.asarray(entry["p"], dtype="float64")
            rest = max(0.0, 1.0 - p.sum())
            has_rest = "rest_log_mean" in entry and rest > 1e-9
            probs = np.r_[p, rest] if has_rest else p / p.sum()
            choice = rng.choice(len(probs), size=count, p=probs / probs.sum())
            if col in ADDRESS_COLUMNS:
                cols[col] = np.asarray(values, dtype=object)[np.minimum(choice, len(values) - 1)]
                continue
            out = np.zeros(count, dtype="float64")
            top = choice < len(values)
            out[top] = np.asarray(values, dtype="float64")[choice[top]]
            if has_rest:
                n_rest = int((~top).sum())
                draw = np.expm1(rng.normal(entry["rest_log_mean"], entry["rest_log_std"], n_rest))
                draw = np.maximum(draw, 0.0)
                out[~top] = np.round(draw) if entry.get("rest_integer", True) else draw
            cols[col] = out if schema.dtype(col) == "float64" else out.astype("int64")
        frame = pd.DataFrame(cols)
        frame[LABEL_COLUMN] = int(spec["label"])
        frame[ATTACK_COLUMN] = cls
        parts.append(frame)
    flows = pd.concat(parts, ignore_index=True)
    flows = flows.iloc[rng.permutation(len(flows))].reset_index(drop=True)
    flows[DATASET_COLUMN] = SYNTHETIC_TAG
    return flows
