#!/usr/bin/env python3
"""Alert writing speed (records/s) and the cost of explanations, one table from one run.

Rows, all on the same real flows (the NF-BoT-IoT-v2 sample) in frames of
``--frame`` flows, each the best of ``--repeat`` runs:

* the peer: the writer as it was before (one dict per flow, ``json.dumps``),
  kept here verbatim in :func:`dict_per_flow`, and the same loop with
  ``orjson.dumps`` where orjson is installed;
* ``AlertWriter`` as ``detect`` runs it: EVE (``jsonl``), ECS and CSV, every
  flow written, suppression off (the same records as the peer's, plus the
  fields SIEMs key on) and on;
* explanations: alerts/s written with and without ``--explain`` on a
  CNN-BiLSTM trained briefly here (timing only), and a frame with no
  alerts with the explainer attached (flows that are not alerts pay nothing).

    PYTHONPATH=src python benchmarks/bench_alerts.py [--flows 100000] [--frame 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import sys
import time
import zlib
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.alerting.suppress import SuppressConfig  # noqa: E402
from flowsentinel.io.alerts import AlertWriter  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402

SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"
PROTO_NAMES = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "IPv6-ICMP", 47: "GRE", 132: "SCTP"}


def dict_per_flow(fh, flows, scores, classes, alerts, rows, dumps=json.dumps):
    """The writer before this change (io/alerts.py at 439f73c), its jsonl path unchanged but for ``dumps``."""
    n = len(flows)

    def col(name, default=None):
        return flows[name].to_numpy() if name in flows.columns else np.full(n, default, dtype=object)

    def iso(ms):
        when = datetime.now(timezone.utc) if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")

    src, dst = col("IPV4_SRC_ADDR", ""), col("IPV4_DST_ADDR", "")
    sport, dport = col("L4_SRC_PORT", 0), col("L4_DST_PORT", 0)
    proto = col("PROTOCOL", 0)
    start = col("FLOW_START_MILLISECONDS", None)
    for i in range(n):
        p = int(proto[i]) if proto[i] is not None else 0
        ms = None if start[i] is None or (isinstance(start[i], float) and np.isnan(start[i])) else float(start[i])
        key = f"{src[i]}|{sport[i]}|{dst[i]}|{dport[i]}|{p}|{ms}".encode()
        score = float(scores[i])
        record = {"timestamp": iso(ms), "flow_id": zlib.crc32(key) << 20 | (zlib.adler32(key) & 0xFFFFF),
                  "event_type": "alert" if alerts[i] else "flow", "src_ip": str(src[i]), "src_port": int(sport[i]),
                  "dest_ip": str(dst[i]), "dest_port": int(dport[i]), "proto": PROTO_NAMES.get(p, str(p))}
        verdict = {"category": str(classes[i]), "score": round(score, 6)}
        if alerts[i]:
            record["alert"] = {"action": "allowed", "signature": f"flowsentinel m: {classes[i]}",
                               "severity": 1 if score >= 0.99 else (2 if score >= 0.9 else 3), **verdict}
        record["flowsentinel"] = {**verdict, "alert": bool(alerts[i]), "row": int(rows[i]), "model": "m",
                                  "model_version": "v"}
        out = dumps(record)
        fh.write((out.decode() if isinstance(out, bytes) else out) + "\n")


def frames_of(flows, size):
    return [flows.iloc[i:i + size] for i in range(0, len(flows), size)]


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100_000, help="flows written per run")
    parser.add_argument("--frame", type=int, default=20_000, help="flows per frame, as detect's chunks")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain-alerts", type=int, default=2000, help="alerts written in the explanation rows")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the explanation rows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    path = data_dir() / SAMPLE
    if not path.exists():
        raise SystemExit(f"{path} not found; set FLOWSENTINEL_DATA to the shared data folder")
    import torch

    from flowsentinel.explain import explain_flows
    from flowsentinel.io.readers import ReadConfig, read_flows
    from flowsentinel.models.deep import cnn_bilstm

    torch.set_num_threads(args.threads)
    flows, _ = read_flows(path, ReadConfig(rejects_dir=Path(os.environ.get("TMPDIR", "/tmp"))))
    flows = flows.sample(frac=1.0, random_state=0).reset_index(drop=True)
    data, train = flows.head(args.flows), flows.iloc[args.flows:args.flows + 20_000]
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, len(data))
    classes = np.where(scores >= 0.5, data["Attack"].to_numpy(dtype=object), "Benign").astype(object)
    alerts = scores >= 0.5
    parts = [(f, scores[i:i + len(f)], classes[i:i + len(f)], alerts[i:i + len(f)], np.arange(i, i + len(f)) + 2)
             for i, f in zip(range(0, len(data), args.frame), frames_of(data, args.frame))]

    def peer(dumps):
        fh = io.StringIO()
        for f, s, c, a, r in parts:
            dict_per_flow(fh, f, s, c, a, r, dumps)

    def writer(fmt, suppress, out_rows=None, **options):
        def run():
            fh = io.StringIO()
            w = AlertWriter(fh, fmt, model_name="m", model_version="v", threshold=0.5, suppress=suppress, **options)
            for f, s, c, a, r in parts if out_rows is None else out_rows:
                w.write(f, s, c, a, r)
            w.finish()
            run.written = w.n_written
        return run

    rows = []

    def add(name, fmt, fn, n_records, unit="records/s"):
        seconds = best(fn, args.repeat)
        rows.append((name, fmt, n_records, seconds, n_records / seconds, unit))

    add("before: one dict per flow, json.dumps", "jsonl", partial(peer, json.dumps), len(data))
    try:
        import orjson

        add("one dict per flow, orjson.dumps", "jsonl", partial(peer, orjson.dumps), len(data))
    except ImportError:
        pass
    off = SuppressConfig(enabled=False)
    for fmt in ("jsonl", "ecs", "csv"):
        run = writer(fmt, off)
        add("AlertWriter, every flow, no suppression", fmt, run, len(data))
    run = writer("jsonl", SuppressConfig(window_s=60))
    add("AlertWriter, every flow, suppression on", "jsonl", run, len(data))

    # Explanation cost, on a network trained briefly (timing only).
    det = cnn_bilstm(max_epochs=1, verbose=False, num_threads=args.threads).fit(train)
    k = args.explain_alerts
    few = data.head(k)
    ex_scores = det.decision_function(few)
    ex_rows = [(few, ex_scores, np.full(k, "DoS", dtype=object), np.ones(k, bool), np.arange(k) + 2)]
    calm = [(few, ex_scores * 0, np.full(k, "Benign", dtype=object), np.zeros(k, bool), np.arange(k) + 2)]
    explainer = partial(explain_flows, det)
    add("alerts only, no explanations", "jsonl", writer("jsonl", off, ex_rows, only_alerts=True), k, "alerts/s")
    add("alerts only, with explanations (IG, 32 steps)", "jsonl",
        writer("jsonl", off, ex_rows, only_alerts=True, explainer=explainer), k, "alerts/s")
    add("no alerts, explainer attached", "jsonl", writer("jsonl", off, calm, explainer=explainer), k)
    add("no alerts, no explainer", "jsonl", writer("jsonl", off, calm), k)

    base = rows[0][4]
    print(f"# alert writing: {len(data):,} real flows (NF-BoT-IoT-v2 sample) in frames of {args.frame:,}, "
          f"half of them alerts; best of {args.repeat}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch threads {args.threads}")
    print()
    print("| writer | format | records | seconds | rate | vs before |")
    print("|---|---|---:|---:|---:|---:|")
    for name, fmt, n, seconds, rate, unit in rows:
        ratio = f"{rate / base:.1f}x" if unit == "records/s" and n == len(data) else ""
        print(f"| {name} | {fmt} | {n:,} | {seconds:.3f} | {rate:,.0f} {unit} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
