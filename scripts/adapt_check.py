#!/usr/bin/env python3
"""`adapt` on half of one benign device group's captures, measured on its other half (one run, Markdown).

The device's captures (``pcaps/benign/iot-sentinel/DEVICE``), in name order,
are dealt alternately into two halves: the first goes to
:func:`flowsentinel.training.adapt.adapt_model` as the guarded network's
benign traffic, the second is never seen by it and is where the false-alarm
rate is measured, before and after. Detection is measured on the ``check``
attack captures of ``pcaps/labels.csv`` (reported on, never trained on),
by the model alone and with host context, as ``detect`` runs.

    PYTHONPATH=src python scripts/adapt_check.py [--device WeMoInsightSwitch] [--model-dir DIR] [--epochs 5]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from flowsentinel.evaluation.tables import Column, render
from flowsentinel.paths import data_dir, shipped_model_dir
from flowsentinel.persistence import load_model
from flowsentinel.schema import ATTACK_COLUMN, BENIGN_CLASS
from flowsentinel.serving.context import HostContext
from flowsentinel.sources import load_sources
from flowsentinel.training.adapt import AdaptConfig, adapt_model


def with_context(detector, flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The model's alerts, and those with host context added, each capture on its own."""
    alone = detector.is_alert(flows)
    return alone, alone | HostContext.per_capture(flows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="WeMoInsightSwitch", help="a folder of pcaps/benign/iot-sentinel")
    ap.add_argument("--model-dir", default=str(shipped_model_dir("default")))
    ap.add_argument("--epochs", type=int, default=AdaptConfig().epochs)
    ap.add_argument("--output-dir", help="keep the adapted model here (default: a temporary folder)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    folder = data_dir() / "pcaps" / "benign" / "iot-sentinel" / args.device
    captures = sorted(folder.glob("*.pcap*"))
    if len(captures) < 4:
        raise SystemExit(f"adapt_check: {folder} holds {len(captures)} captures; at least 4 are needed")
    learn, report = captures[0::2], captures[1::2]
    other = load_sources([f"{p}=Benign" for p in report]).flows
    check = load_sources([f"{data_dir() / 'pcaps' / 'labels.csv'},use=check"]).flows
    attacks = check[check[ATTACK_COLUMN] != BENIGN_CLASS]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.output_dir or Path(tmp) / "adapted")
        result = adapt_model(args.model_dir, [str(p) for p in learn], out, AdaptConfig(epochs=args.epochs),
                             beside=HostContext.per_capture)
        rows = []
        for when, directory in (("before", args.model_dir), ("after", out)):
            detector = load_model(directory, engine="auto")
            far_alone, far_both = with_context(detector, other)
            row = {"when": when, "threshold": float(detector.threshold_), "far": far_alone.mean(),
                   "far_context": far_both.mean()}
            for capture, part in attacks.groupby("Capture", sort=True):
                alone, both = with_context(detector, part)
                name = Path(str(capture)).stem
                row[name] = f"{alone.mean():.2f} / {both.mean():.2f}"
            rows.append(row)
    names = [Path(str(c)).stem for c in sorted(attacks["Capture"].unique())]
    print(f"Device {args.device}: {len(learn)} captures to adapt on ({result.flows}), {len(report)} captures "
          f"({len(other):,} flows) held out of adapting; model {args.model_dir}, {args.epochs} epochs.\n")
    print(render(rows, [Column("when", ""), Column("threshold", "threshold", "{:.4f}"),
                        Column("far", "FAR, other half", "{:.4f}"),
                        Column("far_context", "FAR, other half, with host context", "{:.4f}"),
                        *[Column(n, f"{n}: model / with host context") for n in names]]))
    print("\nadapt's own table (its held-back share of the first half, and the check attack flows):\n")
    print(result.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
