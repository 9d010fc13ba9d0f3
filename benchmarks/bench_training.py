"""Where the training time of the ``configs/paper.toml`` network goes, before and after, in one run.

Prints one table. Each row trains the paper network (multiclass, ``paper``
protocol split of the NF-BoT-IoT-v2 sample, same rows, same seed) in a fresh
process, so that thread settings and compiled graphs do not leak between
rows:

* ``before``: the code of another checkout (``--before-src``, e.g. a
  throwaway ``git worktree add --detach /tmp/fs-base d01e3ca``), else this
  tree with the old settings (eager training);
* ``after``: this tree as the main job runs it (channels-last
  convolution blocks);
* ``after + torch_compile``: the same with ``torch_compile=True`` (full
  batches through ``torch.compile``), left out with ``--no-compile``.

Columns: milliseconds per training batch in each phase (gathering the batch,
the bin encoding alone, forward, backward, gradient clipping and the AdamW
step; timed over ``--phase-batches`` batches on the fitted network), then a
real fit of ``--epochs`` epochs on ``--train-flows`` flows: training flows/s
of the first epoch (which pays for compiling) and of the last, the
validation pass per epoch, and the last epoch's flows/s against ``before``
at the same threads. The main job's runs are ``156,117`` training flows and
``33,453`` validation flows for 40 epochs, so its training time is about
``40 * (156117 / flows_per_s + validation_s * 33453 / val_flows)``.

    python benchmarks/bench_training.py [--before-src /tmp/fs-base/src] [--threads 1,2]
        [--train-flows 30000] [--epochs 2] [--batch-sizes 512]

On a machine shared with other work the wall-clock numbers move with the
load; the table also gives CPU seconds per epoch, and the load average at
the start and the end of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(opts: dict) -> dict:
    """One row, in its own process: phase timings, then a real fit."""
    import numpy as np
    import torch

    torch.set_num_threads(opts["threads"])
    import tempfile

    from flowsentinel.config import build_detector, load_config
    from flowsentinel.training.experiment import load_dataset, prepare

    # The older code knows no torch_compile: the config without it, and the row's own setting below.
    text = (ROOT / "configs" / "paper.toml").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "paper.toml"
        path.write_text("\n".join(line for line in text.splitlines() if not line.startswith("torch_compile")))
        cfg = load_config(path)
    data = load_dataset(None, progress=False)
    if data.synthetic:
        raise SystemExit("the NF-BoT-IoT-v2 sample is missing: set FLOWSENTINEL_DATA to the shared data folder")
    prep = prepare(data, task="multiclass", protocol="paper", features=cfg.features)
    n_val = max(2, round(opts["train_flows"] * len(prep.val) / len(prep.train)))
    train, val = prep.train.iloc[: opts["train_flows"]], prep.val.iloc[:n_val]

    det = build_detector(cfg)
    settings = {"max_epochs": opts["epochs"], "patience": opts["epochs"], "verbose": False,
                "batch_size": opts["batch_size"], "num_threads": opts["threads"]}
    if opts["compile"]:
        settings["torch_compile"] = True
    det.set_params(**settings)
    cpu0, t0 = time.process_time(), time.perf_counter()
    det.fit(train, X_val=val)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    hist = det.history_

    # Phases of one training step, on the fitted network and the same inputs.
    net = det.network_module
    net.train()
    source = det.model_input(train)
    y = torch.from_numpy(det._codes(train["Attack"].to_numpy(dtype=object)))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(net, dynamic=False) if opts["compile"] else net  # as the Trainer compiles it
    rng = np.random.default_rng(0)
    phases = {k: 0.0 for k in ("gather", "encode", "forward", "backward", "optimizer")}
    n = opts["phase_batches"]
    for i in range(n + 2):  # two warm-up batches
        index = rng.choice(len(source), opts["batch_size"], replace=False)
        marks = [time.perf_counter()]
        xb, yb = torch.from_numpy(source.take(index)), y[index]
        marks.append(time.perf_counter())
        if net.encoding is not None:
            with torch.no_grad():
                net.encoding(xb)
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(xb), yb)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        optimizer.step()
        marks.append(time.perf_counter())
        if i >= 2:
            for key, a, b in zip(phases, marks, marks[1:]):
                phases[key] += (b - a) * 1e3 / n
    epoch_s = [r["seconds"] for r in hist]
    train_s = [len(train) / r["flows_per_s"] for r in hist]
    return {
        "phases_ms": phases,
        "first_flows_per_s": hist[0]["flows_per_s"],
        "last_flows_per_s": hist[-1]["flows_per_s"],
        "validation_s": float(np.mean([e - t for e, t in zip(epoch_s, train_s)])),
        "fit_s": fit_s,
        "cpu_s_per_epoch": fit_cpu / len(hist),
        "val_accuracy": hist[-1]["val_accuracy"],
        "n_train": len(train),
        "n_val": len(val),
        "torch": torch.__version__,
    }


def run_row(src: Path, opts: dict, timeout: float) -> dict:
    from flowsentinel.paths import data_dir

    # Every row reads the same data folder, whichever checkout its code comes from.
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(opts["threads"]),
           "FLOWSENTINEL_DATA": str(data_dir())}
    cmd = [sys.executable, __file__, "--worker", json.dumps(opts)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"worker failed ({opts}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before-src", type=Path, help="src/ of the checkout to compare against (default: this tree, "
                                                    "eager)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch-sizes", default="512")
    ap.add_argument("--train-flows", type=int, default=30_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--phase-batches", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true", help="leave out the torch.compile rows")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per row")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0

    here = ROOT / "src"
    before_src = args.before_src or here
    load0 = os.getloadavg()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            variants = [("before", before_src, False), ("after", here, False)]
            if not args.no_compile:
                variants.append(("after + torch_compile", here, True))
            for label, src, compiled in variants:
                opts = {"threads": threads, "batch_size": batch, "compile": compiled, "train_flows": args.train_flows,
                        "epochs": args.epochs, "phase_batches": args.phase_batches}
                rows.append((label, opts, run_row(src, opts, args.timeout)))
    load1 = os.getloadavg()

    first = rows[0][2]
    print(f"machine: {os.cpu_count()} logical CPUs, torch {first['torch']}; load average {load0[0]:.1f} at the "
          f"start, {load1[0]:.1f} at the end")
    print(f"data: paper split of the NF-BoT-IoT-v2 sample, first {first['n_train']:,} training and "
          f"{first['n_val']:,} validation flows, {args.epochs} epochs; before = "
          f"{'this tree, eager' if args.before_src is None else args.before_src}")
    head = ["code", "threads", "batch", "gather ms", "encode ms", "forward ms", "backward ms", "optimizer ms",
            "epoch 1 flows/s", "last epoch flows/s", "validation s/epoch", "CPU s/epoch", "vs before"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i < 1 else "---:" for i in range(len(head))) + "|")
    base = {(o["threads"], o["batch_size"]): r["last_flows_per_s"] for label, o, r in rows if label == "before"}
    for label, o, r in rows:
        p = r["phases_ms"]
        ratio = r["last_flows_per_s"] / base[(o["threads"], o["batch_size"])]
        cells = [label, o["threads"], o["batch_size"],
                 f"{p['gather']:.1f}", f"{p['encode']:.1f}", f"{p['forward']:.1f}", f"{p['backward']:.1f}",
                 f"{p['optimizer']:.1f}", f"{r['first_flows_per_s']:,.0f}", f"{r['last_flows_per_s']:,.0f}",
                 f"{r['validation_s']:.1f}", f"{r['cpu_s_per_epoch']:.1f}", f"{ratio:.2f}x"]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
