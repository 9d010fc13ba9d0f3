"""Sizing the CNN-BiLSTM for speed: accuracy against ONNX Runtime flows/s, one run.

Trains each network of :data:`SIZES` (the ``configs/paper.toml`` network,
then narrower convolutions, a smaller LSTM and head, fewer input bins) on
the ``paper`` protocol split of the NF-BoT-IoT-v2 sample, with the paper
recipe otherwise (ports kept, AdamW, cosine schedule, no class weights, the
checkpoint with the best validation accuracy) for ``--epochs`` epochs, and
scores the test part through ONNX Runtime
(:class:`~flowsentinel.models.engines.OnnxEngine`, network only, prepared
float32 inputs, batch 4096, ``--threads`` intra-op threads, best of
``--repeat``). ``--paper-model-dir`` adds the paper network as the main
job trained it (``models/cnn-bilstm``, 40 epochs) as the first row.

Prints one table and saves a plot of test accuracy against flows/s
(``--plot``, default ``docs/img/sizing.png``), and names the smallest
network at or above ``--bar`` accuracy and weighted F1.

    python benchmarks/bench_sizing.py [--epochs 6] [--sizes paper,narrow,...]
        [--paper-model-dir models/cnn-bilstm] [--threads 1] [--plot FILE]

Fewer epochs than the paper's 40 understate what each network reaches: the
table says how many epochs every row had.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: name -> network settings over the paper config's (which is the first row).
SIZES: dict[str, dict] = {
    "paper": {},
    "narrow": {"conv_channels": [16, 32], "lstm_hidden": 32, "dense": 64},
    "narrow-16bins": {"conv_channels": [16, 32], "lstm_hidden": 32, "dense": 64, "input_bins": 16},
    "small-8bins": {"conv_channels": [8, 16], "lstm_hidden": 16, "dense": 32, "input_bins": 8},
    "small-pool6-8bins": {"conv_channels": [8, 16], "pool": 6, "lstm_hidden": 16, "dense": 32, "input_bins": 8},
    "default-no-bins": {"conv_channels": [8, 16], "pool": 6, "lstm_hidden": 16, "dense": 32, "input_bins": 0,
                        "dropout": 0.2},
}


def onnx_flows_per_s(det, source, threads: int, repeat: int) -> float:
    from flowsentinel.models.engines import InferenceConfig, OnnxEngine

    engine = OnnxEngine(det.onnx_graph(), InferenceConfig(engine="onnx", intra_op_threads=threads))
    X = source.X
    batches = [X[i : i + 4096] for i in range(0, len(X) - 4095, 4096)] or [X]
    engine(batches[0])  # warm-up
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for b in batches:
            engine(b)
        best = min(best, time.perf_counter() - t0)
    return sum(len(b) for b in batches) / best


def main() -> int:
    import dataclasses

    from sklearn.metrics import f1_score

    from flowsentinel.config import build_detector, load_config
    from flowsentinel.persistence import load_model
    from flowsentinel.training.experiment import load_dataset, prepare, task_labels

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--train-flows", type=int, help="train on the first N training flows only (a quick look)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training, ONNX Runtime intra-op threads")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--paper-model-dir", type=Path)
    ap.add_argument("--bar", type=float, default=0.99)
    ap.add_argument("--plot", type=Path, default=ROOT / "docs" / "img" / "sizing.png")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT / "configs" / "paper.toml")
    # Short runs here: compiling would cost as much as it saves.
    base_model = {k: v for k, v in cfg.model.items() if k != "torch_compile"}
    data = load_dataset(None, progress=False)
    prep = prepare(data, task="multiclass", protocol="paper", features=cfg.features)
    train = prep.train if args.train_flows is None else prep.train.iloc[: args.train_flows]
    y_test = task_labels(prep.test, "multiclass")
    rows = []
    names = args.sizes.split(",")
    if args.paper_model_dir is not None:
        names.insert(0, "paper, main job")
    for name in names:
        t0 = time.perf_counter()
        if name == "paper, main job":
            det = load_model(args.paper_model_dir)
            epochs, fit_s = str(det.max_epochs), float("nan")
        else:
            run = dataclasses.replace(cfg, model={**base_model, **SIZES[name], "max_epochs": args.epochs,
                                                  "patience": args.epochs, "verbose": False,
                                                  "num_threads": args.threads})
            det = build_detector(run)
            det.fit(train, X_val=prep.val)
            epochs, fit_s = str(args.epochs), time.perf_counter() - t0
        source = det.model_input(prep.test)
        proba = det.probabilities(source)
        pred = np.asarray(det.classes_)[proba.argmax(axis=1)]
        rows.append({
            "name": name,
            "params": sum(int(np.prod(v.shape)) for k, v in det.canonical_weights().items() if "running" not in k
                          and k != "encoding.edges"),
            "settings": {k: v for k, v in det.network_kwargs().items() if k not in ("mode", "window")},
            "epochs": epochs,
            "fit_s": fit_s,
            "accuracy": float((pred == y_test).mean()),
            "f1_weighted": float(f1_score(y_test, pred, average="weighted")),
            "f1_macro": float(f1_score(y_test, pred, average="macro")),
            "flows_per_s": onnx_flows_per_s(det, source, args.threads, args.repeat),
        })
        logging.warning("%s: %s", name, rows[-1])

    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} logical CPUs, load average {load:.1f} at the end; ONNX Runtime "
          f"{__import__('onnxruntime').__version__}, {args.threads} intra-op thread(s), batch 4096, network only")
    print(f"data: paper split of the NF-BoT-IoT-v2 sample, {len(train):,} training, {len(prep.test):,} test flows")
    ref = next((r for r in rows if r["name"].startswith("paper")), rows[0])
    head = ["network", "settings", "parameters", "epochs", "train s", "accuracy", "F1 weighted", "F1 macro",
            "ONNX flows/s", f"vs {ref['name']}"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(head) - 2))
    paper_speed = ref["flows_per_s"]
    for r in rows:
        s = r["settings"]
        settings = (f"conv {list(s['conv_channels'])}, pool {s['pool']}, LSTM {s['lstm_hidden']}, dense {s['dense']}, "
                    f"bins {s['input_bins']}")
        train_s = f"{r['fit_s']:.0f}" if np.isfinite(r["fit_s"]) else "-"
        print(f"| {r['name']} | {settings} | {r['params']:,} | {r['epochs']} | {train_s} | {r['accuracy']:.4f} "
              f"| {r['f1_weighted']:.4f} | {r['f1_macro']:.4f} | {r['flows_per_s']:,.0f} | "
              f"{r['flows_per_s'] / paper_speed:.2f}x |")
    keep = [r for r in rows if r["accuracy"] >= args.bar and r["f1_weighted"] >= args.bar]
    if keep:
        best = min(keep, key=lambda r: r["params"])
        print(f"smallest network at or above {args.bar} accuracy and weighted F1: {best['name']} "
              f"({best['params']:,} parameters, {best['flows_per_s']:,.0f} flows/s)")
    else:
        print(f"no network reached {args.bar} accuracy and weighted F1 in this run")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for r in rows:
        ax.scatter(r["flows_per_s"], r["accuracy"], s=20 + 60 * np.log10(max(r["params"], 10)) - 60)
        ax.annotate(f"{r['name']} ({r['params']:,})", (r["flows_per_s"], r["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    ax.axhline(args.bar, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"ONNX Runtime flows/s (batch 4096, {args.threads} thread)")
    ax.set_ylabel("test accuracy (paper protocol)")
    ax.set_title("CNN-BiLSTM size against speed, NF-BoT-IoT-v2 sample")
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot)
    print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
