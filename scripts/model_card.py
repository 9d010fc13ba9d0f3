#!/usr/bin/env python3
"""The numbers of docs/model-card.md, measured on a saved model (one run, Markdown on stdout).

* the held-out part of the model's own split (made again from its manifest:
  same sources, protocol and seed), by kind of flow: benign IoT devices and
  application captures never trained on (whole groups), attack captures,
  NF-CSE-CIC-IDS2018-v2 and NF-BoT-IoT-v2 rows;
* every ``check`` capture of ``pcaps/labels.csv`` (never trained on):
  flows and alerts.

Each figure is given for the model alone and with host context
(``flowsentinel.serving.context``, what ``detect`` adds by default where the
flows carry addresses), each capture on its own as ``detect`` would see it.

    PYTHONPATH=src python scripts/model_card.py --model-dir src/flowsentinel/data/models/default [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from flowsentinel.evaluation.tables import Column, render
from flowsentinel.paths import data_dir
from flowsentinel.persistence import load_model
from flowsentinel.schema import ATTACK_COLUMN, BENIGN_CLASS
from flowsentinel.serving.context import HostContext
from flowsentinel.sources import load_sources
from flowsentinel.training.experiment import prepared_from_manifest


def kind_of(group: str, source: str) -> str:
    if "iot-sentinel/" in group:
        return "benign IoT device captures"
    if "ndpi-apps/" in group:
        return "benign application captures"
    if "pcaps/attacks/" in group:
        return "attack captures"
    if "attack-captures/" in group:
        return "recorded attack captures (nmap, hping3)"
    if source.startswith("nf-cse-cic-ids2018"):
        return "NF-CSE-CIC-IDS2018-v2 rows"
    if source.startswith("nf-bot-iot"):
        return "NF-BoT-IoT-v2 rows"
    return source


def context_flags(frame: pd.DataFrame) -> np.ndarray:
    """Host context's verdicts, each capture on its own (as `detect` sees one capture), NF rows per source."""
    unit = frame["Capture"].fillna("").astype(str).where(lambda c: c != "", "nf:" + frame["Source"].astype(str))
    return HostContext.flags_per_unit(frame, unit.to_numpy())


def rates(detector, frame: pd.DataFrame) -> dict:
    alert = detector.is_alert(frame)
    both = alert | context_flags(frame)
    benign = frame[ATTACK_COLUMN].to_numpy() == BENIGN_CLASS

    def share(flags, which):
        return float(flags[which].mean()) if which.any() else None

    return {"flows": int(len(frame)), "benign": int(benign.sum()), "attack": int((~benign).sum()),
            "false_alarm_rate": share(alert, benign), "detection_rate": share(alert, ~benign),
            "alerts": int(alert.sum()), "false_alarm_rate_context": share(both, benign),
            "detection_rate_context": share(both, ~benign), "alerts_context": int(both.sum())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--json", help="also write the numbers as JSON here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    detector = load_model(args.model_dir, engine="auto")
    out: dict = {"model_dir": args.model_dir, "threshold": detector.threshold_}

    prepared = prepared_from_manifest(detector.manifest_)
    test = prepared.test
    kinds = np.array([kind_of(str(g), str(s)) for g, s in zip(test["Group"], test["Source"])])
    rows = [{"kind": k, **rates(detector, test[kinds == k])} for k in pd.unique(kinds)]
    groups = test.groupby(kinds)["Group"].nunique().to_dict()
    for r in rows:
        r["groups"] = int(groups.get(r["kind"], 0))
    out["held_out"] = rows
    print(f"Model: {args.model_dir} (threshold {detector.threshold_:.4f})\n")
    print("Held-out part of the model's own split (whole captures and devices never trained on):\n")
    print(render(rows, [Column("kind", "flows"), Column("groups", "groups", "{:,}"), Column("benign", "benign", "{:,}"),
                        Column("attack", "attack", "{:,}"), Column("false_alarm_rate", "false-alarm rate", "{:.4f}"),
                        Column("detection_rate", "detection rate", "{:.4f}"),
                        Column("false_alarm_rate_context", "FAR, with host context", "{:.4f}"),
                        Column("detection_rate_context", "detection, with host context", "{:.4f}")]))

    labels = data_dir() / "pcaps" / "labels.csv"
    if labels.exists():
        check = load_sources([f"{labels},use=check"]).flows
        crow = []
        for capture, part in check.groupby("Capture", sort=True):
            r = rates(detector, part)
            crow.append({"capture": str(capture).split("pcaps/")[-1], "label": part["Source_Attack"].iloc[0],
                         "flows": r["flows"], "alerts": r["alerts"], "share": r["alerts"] / max(r["flows"], 1),
                         "alerts_context": r["alerts_context"],
                         "share_context": r["alerts_context"] / max(r["flows"], 1)})
        out["check_captures"] = crow
        print("\nCheck captures (pcaps/labels.csv, use = check: reported on, never trained on):\n")
        print(render(crow, [Column("capture", "capture"), Column("label", "label"), Column("flows", "flows", "{:,}"),
                            Column("alerts", "alerts", "{:,}"), Column("share", "share flagged", "{:.2f}"),
                            Column("alerts_context", "alerts, with host context", "{:,}"),
                            Column("share_context", "share, with host context", "{:.2f}")]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
