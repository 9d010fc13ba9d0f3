"""Alert counts per shared capture, for a model trained on NetFlow data.

Meters every capture under ``<data>/pcaps/{ppa,slips}`` (and ``ndpi`` with
``--all``), scores the flows with a saved model and prints one Markdown table:
flows, alerts and alerts by class per capture. The model is not tuned to
these captures: they are traffic it has never seen.

    python scripts/alerts_on_captures.py --model-dir models/cnn-bilstm [--all]
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from pathlib import Path

from flowsentinel.io.alerts import AlertWriter
from flowsentinel.metering import MeterConfig, meter_capture
from flowsentinel.paths import data_dir
from flowsentinel.persistence import load_model
from flowsentinel.serving.detect import detect_frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--all", action="store_true", help="also the nDPI regression captures")
    ap.add_argument("--if-present", action="store_true", help="exit 0 with a note where the captures are absent")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = data_dir() / "pcaps"
    if not root.is_dir():
        print(f"no captures at {root}: set FLOWSENTINEL_DATA" + ("; skipping the alert counts" if args.if_present else ""),
              file=sys.stderr)
        return 0 if args.if_present else 2
    detector = load_model(args.model_dir)
    groups = ["ppa", "slips"] + (["ndpi"] if args.all else [])
    print(f"model: {args.model_dir} ({detector.manifest_['estimator']}, trained on "
          f"{Path(detector.manifest_['training_data'].get('path') or 'synthetic').name})")
    print("| capture | flows | alerts | alerts by class |")
    print("|---|---:|---:|---|")
    for group in groups:
        for path in sorted((root / group).glob("*.pcap*")):
            run = meter_capture(path, MeterConfig())
            summary = detect_frames(detector, run, AlertWriter(io.StringIO(), "jsonl"), progress=False)
            by_class = ", ".join(f"{k} {v}" for k, v in sorted(summary.by_class.items(), key=lambda kv: -kv[1]))
            print(f"| {group}/{path.name} | {summary.n_flows} | {summary.n_alerts} | {by_class or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
