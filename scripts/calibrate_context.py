#!/usr/bin/env python3
"""Calibrate host context's thresholds (flowsentinel.serving.context) on benign captures (one run).

The captures are the benign ``use = train`` captures that lie in the training
and validation parts of a saved model's split (made again from its manifest),
so the held-out part that docs/model-card.md reports on plays no part. For
each kind of count, the largest value any benign window reaches; the
threshold is twice that, never below ``--floor``. Prints a Markdown table and
whether the thresholds equal HostContextConfig's defaults.

    PYTHONPATH=src python scripts/calibrate_context.py --model-dir src/flowsentinel/data/models/default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

from flowsentinel.evaluation.tables import Column, render
from flowsentinel.persistence import read_manifest
from flowsentinel.schema import ATTACK_COLUMN, BENIGN_CLASS
from flowsentinel.serving.context import HostContextConfig, peak_counts
from flowsentinel.training.experiment import prepared_from_manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--floor", type=int, default=8, help="lowest threshold of any kind (default 8)")
    ap.add_argument("--json", help="also write the peaks and thresholds as JSON here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    prepared = prepared_from_manifest(read_manifest(args.model_dir))
    groups = set(prepared.train["Group"].astype(str)) | set(prepared.val["Group"].astype(str))
    flows = prepared.data.flows
    captures = flows["Capture"].fillna("").astype(str) != ""
    mine = flows["Group"].astype(str).isin(groups) & captures & (flows[ATTACK_COLUMN] == BENIGN_CLASS)
    benign = flows[mine]
    peaks: dict[str, tuple[int, str]] = {}
    for capture, part in benign.groupby("Capture", sort=True):
        for kind, value in peak_counts(part).items():
            if value > peaks.get(kind, (-1, ""))[0]:
                peaks[kind] = (value, str(capture).split("pcaps/")[-1])
    defaults = HostContextConfig()
    rows = []
    for kind, (peak, capture) in peaks.items():
        rows.append({"kind": kind, "peak": peak, "capture": capture, "threshold": max(2 * peak, args.floor),
                     "default": getattr(defaults, kind)})
    print(f"Benign captures: {benign['Capture'].nunique():,} ({len(benign):,} flows) of the training and "
          f"validation parts of {args.model_dir}'s split; window {defaults.window_s:g} s.\n")
    print(render(rows, [Column("kind", "count"), Column("peak", "largest benign window", "{:,}"),
                        Column("capture", "reached in"), Column("threshold", "threshold", "{:,}"),
                        Column("default", "HostContextConfig default", "{:,}")]))
    same = all(r["threshold"] == r["default"] for r in rows)
    print("\nThe defaults " + ("equal these thresholds." if same else "DIFFER from these thresholds."))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "config": dataclasses.asdict(defaults)}, fh, indent=2)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
