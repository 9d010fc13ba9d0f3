"""Speed and memory of the CNN-BiLSTM detector, measured in one run.

Prints one table: training flows/s, inference flows/s at batch 4096
(end to end from a flow table, and the network alone), single-flow latency
p50/p99, and peak resident memory, with the machine it ran on.

    python benchmarks/bench_cnn_bilstm.py [--data FILE] [--train-flows N] [--threads T]

Without ``--data`` it uses the NF-BoT-IoT-v2 sample under the data folder,
or synthetic flows where that is absent (said in the output).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

import numpy as np
import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.training.experiment import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--train-flows", type=int, default=60_000, help="flows in the timed training epoch")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--latency-calls", type=int, default=300)
    ap.add_argument("--mode", choices=("flow", "window"), default="flow")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_dataset(args.data, synthetic_flows=args.train_flows * 2)
    flows = data.flows.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train = flows.iloc[: args.train_flows]
    test = flows.iloc[args.train_flows : args.train_flows + 4096 * 8]
    if len(test) < 4096:
        test = flows.iloc[: 4096 * 8]

    det = cnn_bilstm(mode=args.mode, max_epochs=1, verbose=False, val_fraction=0.05)
    t0 = time.perf_counter()
    det.fit(train)
    fit_s = time.perf_counter() - t0
    train_speed = det.history_[0]["flows_per_s"]

    # Inference at batch 4096, end to end (preprocessing + network) ...
    batches = [test.iloc[i : i + 4096] for i in range(0, len(test) - 4095, 4096)]
    det.predict_proba(batches[0])  # warm-up
    t0 = time.perf_counter()
    for b in batches:
        det.predict_proba(b)
    e2e = len(batches) * 4096 / (time.perf_counter() - t0)
    # ... and the network alone on prepared inputs.
    source = det.model_input(test)
    det.probabilities(source, 4096)
    t0 = time.perf_counter()
    det.probabilities(source, 4096)
    net = len(source) / (time.perf_counter() - t0)

    # Single-flow latency, end to end, one flow per call.
    lat = []
    for i in range(args.latency_calls):
        row = test.iloc[[i % len(test)]]
        t0 = time.perf_counter()
        det.predict_proba(row)
        lat.append(time.perf_counter() - t0)
    p50, p99 = np.percentile(np.asarray(lat) * 1e3, [50, 99])

    print(f"machine: {machine()}")
    print(f"data: {data.description}; model: CNN-BiLSTM ({args.mode} mode), {sum(p.numel() for p in det.network_module.parameters()):,} parameters")
    rows = [
        ("training (one epoch, batch %d)" % det.batch_size, f"{train_speed:,.0f} flows/s", f"{len(train):,} flows, fit {fit_s:.1f} s"),
        ("inference, batch 4096, end to end", f"{e2e:,.0f} flows/s", "flow table -> features -> probabilities"),
        ("inference, batch 4096, network only", f"{net:,.0f} flows/s", "prepared float32 inputs"),
        ("single-flow latency p50", f"{p50:.2f} ms", f"{args.latency_calls} calls, end to end"),
        ("single-flow latency p99", f"{p99:.2f} ms", ""),
        ("peak resident memory", f"{peak_rss_mib():,.0f} MiB", "whole process, incl. data"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':{width}} | {'value':>16} | note |")
    print(f"|{'-' * (width + 2)}|{'-' * 18}|------|")
    for name, value, note in rows:
        print(f"| {name:{width}} | {value:>16} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
