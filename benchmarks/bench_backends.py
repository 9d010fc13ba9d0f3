#!/usr/bin/env python3
"""Training and inference speed of the CNN-BiLSTM in PyTorch and in MindSpore, one table, one run.

Both backends train the same detector (same parameters, seed and initial
weights) on the same flows, then score with their own weights. Columns:

* train flows/s: training flows per second of the epochs after the first
  (the first includes MindSpore's graph compilation), median over epochs;
* fit s: the whole ``fit`` (preprocessing, every epoch, validation);
* flows/s @4096: ``predict_proba`` on a table of 4,096 flows (feature
  pipeline included), median of ``--repeat`` calls after a warm-up;
* latency p50 / p99: ``predict_proba`` on one flow, over ``--latency-calls`` calls;
* max dP: the largest absolute difference in class probability from PyTorch on the
  test flows when this backend runs PyTorch's trained weights (parity).

A last row runs MindSpore's own ``nn.Conv1d`` and ``nn.LSTM`` cells on the
same weights (inference only), to show why the backend builds its own.

Needs the MindSpore environment (``pip install .[mindspore]``, see
docs/mindspore.md). The CPU is shared: compare numbers within one run.

    python benchmarks/bench_backends.py [--rows 40000] [--epochs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from flowsentinel.models.deep import cnn_bilstm  # noqa: E402
from flowsentinel.paths import data_file  # noqa: E402
from flowsentinel.persistence import save_model  # noqa: E402
from flowsentinel.sampling import stratified_split  # noqa: E402
from flowsentinel.training.benchmark import measure_speed  # noqa: E402
from flowsentinel.training.experiment import DEFAULT_SAMPLE, load_dataset  # noqa: E402

log = logging.getLogger("bench_backends")


def load_model_in_mindspore(path):
    """A saved model, scored by MindSpore's compiled network."""
    from flowsentinel.persistence import load_model

    return load_model(path, backend="mindspore")


def load_flows(rows: int, seed: int) -> tuple[pd.DataFrame, str]:
    path = data_file(DEFAULT_SAMPLE)
    if path is None:
        from flowsentinel.synthetic import generate_flows

        log.warning("the NF-BoT-IoT-v2 sample is not in the data folder: using %d SYNTHETIC flows", rows)
        return generate_flows(rows, random_state=seed), f"SYNTHETIC ({rows:,} flows)"
    data = load_dataset(path, max_rows=rows)
    return data.flows, data.description


def inference_speed(detector, flows: pd.DataFrame, batch: int, repeats: int, latency_calls: int) -> dict[str, float]:
    """flowsentinel.training.benchmark.measure_speed, plus the first call's time (MindSpore compiles the shape there)."""
    big = pd.concat([flows] * int(np.ceil(batch / len(flows))), ignore_index=True).iloc[:batch]
    t0 = time.perf_counter()
    detector.predict_proba(big)
    first = time.perf_counter() - t0
    speed = measure_speed(detector, flows, batch=batch, repeats=repeats, latency_calls=latency_calls)
    return {"flows_per_s": speed["flows_per_s"], "first_call_s": first,
            "p50_ms": speed["latency_p50_ms"], "p99_ms": speed["latency_p99_ms"]}


def train_speed(detector) -> float:
    speeds = [h["flows_per_s"] for h in detector.history_]
    return float(np.median(speeds[1:] if len(speeds) > 1 else speeds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000, help="flows read from the sample (default 40,000)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per backend (default 3)")
    parser.add_argument("--batch", type=int, default=4096, help="inference batch (default 4096)")
    parser.add_argument("--repeat", type=int, default=5, help="timed inference calls (default 5)")
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="CPU threads, both backends")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import torch

    from flowsentinel.backends import mindspore as msb

    torch.set_num_threads(args.threads)
    msb.mindspore_module(args.threads)
    flows, description = load_flows(args.rows, args.seed)
    part = stratified_split(flows["Attack"].to_numpy(), (0.7, 0.15, 0.15), seed=args.seed)
    train, val, test = (flows.iloc[i].reset_index(drop=True) for i in (part.train, part.val, part.test))
    # patience above the epochs: every backend runs every epoch
    params = {"max_epochs": args.epochs, "patience": args.epochs + 1, "random_state": args.seed,
              "num_threads": args.threads, "verbose": False}

    rows, fitted = [], {}
    for name in ("torch", "mindspore"):
        log.info("training %s on %d flows, %d epochs", name, len(train), args.epochs)
        det = cnn_bilstm(backend=name, **params).fit(train, X_val=val)
        fitted[name] = det
        log.info("scoring with %s", name)
        rows.append({"backend": name, "train": train_speed(det), "fit_s": det.fit_seconds_,
                     **inference_speed(det, test, args.batch, args.repeat, args.latency_calls)})

    # Parity and MindSpore's own cells: PyTorch's trained weights, loaded into MindSpore.
    reference = fitted["torch"].predict_proba(test)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(fitted["torch"], Path(tmp) / "model")
        ported = load_model_in_mindspore(path)
        native = load_model_in_mindspore(path)
    arch = native.manifest_["state"]["architecture"]
    native.network_ = msb.network_classes().MindSporeCNNBiLSTMNet(
        arch["n_inputs"], arch["n_classes"], conv="native", lstm="native", **native.network_kwargs())
    msb.load_canonical_state(native.network_, ported.canonical_weights())
    native.network_.set_train(False)
    native.use_backend_engine()
    rows[0]["dp"] = 0.0
    rows[1]["dp"] = float(np.abs(ported.predict_proba(test) - reference).max())
    log.info("scoring with MindSpore's nn.Conv1d + nn.LSTM")
    rows.append({"backend": "mindspore, nn.Conv1d + nn.LSTM", "train": float("nan"), "fit_s": float("nan"),
                 "dp": float(np.abs(native.predict_proba(test) - reference).max()),
                 **inference_speed(native, test, args.batch, args.repeat, args.latency_calls)})

    import mindspore

    def f(v, fmt):
        width = int("".join(ch for ch in fmt.split(".")[0] if ch.isdigit()))
        return f"{'-':>{width}}" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)

    print(f"CNN-BiLSTM backends on {description}: {len(train):,} train / {len(val):,} validation / "
          f"{len(test):,} test flows; {args.epochs} epochs, batch {fitted['torch'].batch_size}, "
          f"mode {fitted['torch'].mode}")
    print(f"CPU: {platform.processor() or platform.machine()}, {args.threads} threads; torch {torch.__version__}, "
          f"mindspore {mindspore.__version__}, numpy {np.__version__}")
    head = (f"| {'backend':32} | {'train flows/s':>13} | {'fit s':>7} | {'flows/s @' + str(args.batch):>13} | "
            f"{'first call s':>12} | {'latency p50 ms':>14} | {'p99 ms':>7} | {'max dP':>8} |")
    print(head)
    print("|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|")
    for r in rows:
        print(f"| {r['backend']:32} | {f(r['train'], '13,.0f')} | {f(r['fit_s'], '7.1f')} | "
              f"{f(r['flows_per_s'], '13,.0f')} | {f(r['first_call_s'], '12.2f')} | {f(r['p50_ms'], '14.2f')} | "
              f"{f(r['p99_ms'], '7.2f')} | {f(r['dp'], '8.1e')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
