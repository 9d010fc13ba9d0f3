#!/usr/bin/env python3
"""What host context costs beside the model, one table from one run.

Generated flows with addresses, start times and many probes (each source and
destination drawn from a few thousand hosts, so that about half the flows
belong to a host past a threshold), in chunks of ``--chunk`` flows, as
``detect`` hands them on. Rows, each the best of ``--repeat`` runs over every
chunk, one core:

* host context alone (``HostContext.verdicts``, its counts carried from
  chunk to chunk);
* the peer: the shipped model's scoring of the same chunks through ONNX
  Runtime (``predict_proba``: the feature transform and the network), the
  rest of ``detect``'s scoring stage.

    PYTHONPATH=src python benchmarks/bench_host_context.py [--flows 1000000] [--chunk 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time

import numpy as np
import pandas as pd


def chunks(n_flows: int, size: int, seed: int = 0) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(max(1, n_flows // size)):
        out.append(pd.DataFrame({
            "FLOW_START_MILLISECONDS": 1_700_000_000_000 + k * 20_000 + np.sort(rng.integers(0, 20_000, size)),
            "FLOW_END_MILLISECONDS": 1_700_000_000_000 + k * 20_000 + 20_000,
            "IPV4_SRC_ADDR": np.char.add("10.1.", rng.integers(0, 5000, size).astype(str)),
            "IPV4_DST_ADDR": np.char.add("10.2.", rng.integers(0, 2000, size).astype(str)),
            "L4_SRC_PORT": rng.integers(1024, 65535, size), "L4_DST_PORT": rng.integers(0, 65535, size),
            "PROTOCOL": 6, "IN_PKTS": rng.integers(1, 5, size), "OUT_PKTS": rng.integers(0, 3, size),
            "IN_BYTES": rng.integers(40, 400, size), "OUT_BYTES": rng.integers(0, 400, size),
            "TCP_FLAGS": 2, "CLIENT_TCP_FLAGS": 2, "SERVER_TCP_FLAGS": rng.choice([0, 20], size),
        }))
    return out


def best_rate(fn, frames: list[pd.DataFrame], repeat: int) -> float:
    n = sum(len(f) for f in frames)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(frames)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from flowsentinel.models.engines import InferenceConfig
    from flowsentinel.paths import shipped_model_dir
    from flowsentinel.persistence import load_model
    from flowsentinel.serving.context import HostContext

    frames = chunks(args.flows, args.chunk)
    detector = load_model(shipped_model_dir("default"), inference=InferenceConfig(engine="onnx", intra_op_threads=1))
    # The columns the model reads and the generator does not make, as zeros (their values do not change its cost).
    missing = [c for c in detector.features_.input_columns_ if c not in frames[0].columns]
    frames = [f.assign(**{c: 0 for c in missing}) for f in frames]
    flagged = []

    def context(fs):
        hc = HostContext()
        flagged.append(sum(int(hc.verdicts(f)[0].sum()) for f in fs))

    def model(fs):
        for f in fs:
            detector.predict_proba(f)

    ctx_rate = best_rate(context, frames, args.repeat)
    model_rate = best_rate(model, frames, args.repeat)
    n = sum(len(f) for f in frames)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {n:,} generated flows in chunks of {args.chunk:,}; {flagged[-1]:,} flagged by host context; "
          f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; load average {load:.1f}")
    print()
    print("| stage | flows/s | / the model's scoring |")
    print("|---|---:|---:|")
    print(f"| shipped model, ONNX Runtime, 1 thread (feature transform + network) | {model_rate:,.0f} | 1.00 |")
    print(f"| host context | {ctx_rate:,.0f} | {ctx_rate / model_rate:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
