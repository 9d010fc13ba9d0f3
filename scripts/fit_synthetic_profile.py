"""Regenerate the synthetic-flow profile from a real NF v2 flow file.

The profile holds per-class summary statistics only (class shares, the most
frequent values of each column and a log-normal fit of the rest), never rows.

    python scripts/fit_synthetic_profile.py ../shared/data/nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from flowsentinel.io.readers import ReadConfig, read_flows
from flowsentinel.schema import ATTACK_COLUMN, V2_FEATURES

TOP = 10


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "src/flowsentinel/data/synthetic_profile.json"))
    args = ap.parse_args()
    flows, _ = read_flows(args.data, ReadConfig(rejects_dir=Path("/tmp")))
    profile = {"source": Path(args.data).name, "n_flows": int(len(flows)), "classes": {}}
    for cls, group in flows.groupby(ATTACK_COLUMN):
        cols = {}
        for col in V2_FEATURES:
            counts = group[col].astype(str).value_counts() if group[col].dtype == object or str(group[col].dtype) == "str" else group[col].value_counts()
            top = counts.iloc[:TOP]
            rest_mask = ~group[col].isin(top.index)
            entry = {"values": [v.item() if hasattr(v, "item") else v for v in top.index], "p": [round(float(c) / len(group), 6) for c in top.to_numpy()]}
            rest = group.loc[rest_mask, col]
            if len(rest) and col not in ("IPV4_SRC_ADDR", "IPV4_DST_ADDR"):
                logs = np.log1p(rest.to_numpy(dtype="float64"))
                entry["rest_log_mean"] = round(float(logs.mean()), 6)
                entry["rest_log_std"] = round(float(logs.std()), 6)
                entry["rest_integer"] = bool(np.all(np.mod(rest.to_numpy(dtype="float64"), 1) == 0))
            else:
                # Leftover mass is spread over the top values.
                pass
            cols[col] = entry
        profile["classes"][cls] = {"share": round(len(group) / len(flows), 6), "label": int(group["Label"].iloc[0]), "columns": cols}
    Path(args.output).write_text(json.dumps(profile, indent=1))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
