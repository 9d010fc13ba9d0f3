#!/usr/bin/env python3
"""Calibrate host context's thresholds (flowsentinel.serving.context) on benign captures (one run).

The captures are the benign ``use = train`` captures that lie in the training
and validation parts of a saved model's split (made again from its manifest),
so the held-out part that docs/model-card.md reports on plays no part. For
each kind of count, the largest value any benign window reaches; the
threshold is twice that, never below ``--floor`` (``crafted``, a count of
probes no TCP stack sends, never below ``--crafted-floor``). A link-wide
count (``half_open``) is measured on all those captures at once, each
shifted to start at time 0, as if one sensor watched every one of them. Prints a Markdown table and
whether the thresholds equal HostContextConfig's defaults.

    PYTHONPATH=src python scripts/calibrate_context.py --model-dir src/flowsentinel/data/models/default
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys

import pandas as pd

from flowsentinel.evaluation.tables import Column, render
from flowsentinel.persistence import read_manifest
from flowsentinel.schema import ATTACK_COLUMN, BENIGN_CLASS
from flowsentinel.serving.context import TIME, HostContextConfig, peak_counts
from flowsentinel.training.experiment import prepared_from_manifest

#: Counts taken over all the flows a sensor sees, not per host.
LINK_WIDE = ("half_open",)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--floor", type=int, default=8, help="lowest threshold of any kind (default 8)")
    ap.add_argument("--crafted-floor", type=int, default=2,
                    help="lowest threshold of the crafted-flags count (default 2)")
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
            if kind not in LINK_WIDE and value > peaks.get(kind, (-1, ""))[0]:
                peaks[kind] = (value, str(capture).split("pcaps/")[-1])
    # A link-wide count is measured on every benign capture at once, each shifted to start at time 0 and
    # with its hosts kept apart: the busiest link these captures make.
    overlay = []
    for i, (_, part) in enumerate(benign.groupby("Capture", sort=True)):
        part = part.copy()
        start = pd.to_numeric(part[TIME], errors="coerce")
        part[TIME] = start - start.min()
        for column in ("IPV4_SRC_ADDR", "IPV4_DST_ADDR"):
            part[column] = f"{i}/" + part[column].astype(str)
        overlay.append(part)
    together = peak_counts(pd.concat(overlay, ignore_index=True))
    for kind in LINK_WIDE:
        peaks[kind] = (together[kind], f"all {len(overlay):,} captures at once")
    defaults = HostContextConfig()
    rows = []
    for kind, (peak, capture) in peaks.items():
        floor = args.crafted_floor if kind == "crafted" else args.floor
        rows.append({"kind": kind, "peak": peak, "capture": capture, "threshold": max(2 * peak, floor),
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
