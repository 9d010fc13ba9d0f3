#!/usr/bin/env python3
"""CNN-BiLSTM inference: PyTorch vs ONNX Runtime (vs dynamic int8) vs Extra Trees.

Prints tables measured in one run on real flows (the NF-BoT-IoT-v2 sample).
Every model is trained on the same stratified subset of the sample for
``--epochs`` epochs only (a short training: enough for speed, and a first
look at accuracy, not the accuracy of a full training); throughput and
latency are measured on held-out flows.

* **network flows/s**: the model alone on preprocessed input, batches of
  ``--batch`` rows (the CNN-BiLSTM network, or the Extra Trees forest);
* **end-to-end flows/s**: ``predict_proba`` on flow-table slices of
  ``--batch`` rows: preprocessing + network + probabilities, as ``detect``
  runs it;
* engines: ``torch`` (PyTorch, the reference), ``onnxruntime`` (the fast
  path as ``detect`` runs it: the saved graph, each batch in slices of
  ``cache_rows`` as ``detect`` chooses them: 256 rows for a network slower
  than 5 us a row, else 1,024), ``ort, exporter`` (the same network through
  PyTorch's ONNX exporter, the graph saved before the matrix-product
  graph of ``flowsentinel.models.onnx_graph``; the same graph for networks
  that one does not cover), ``ort, whole`` (each 4,096-row batch in one
  call), ``ort int8`` (dynamic int8 quantization of the saved graph);
* **p50 / p99 ms**: one flow per ``predict_proba`` call, end to end;
* **max |dp|**: largest difference of any class probability from PyTorch
  on the test flows; **macro-F1** on the held-out flows.

Each throughput is the best of ``--repeat`` passes (the CPU may be shared).

    .venv/bin/python benchmarks/bench_inference.py [--train-rows 40000] [--epochs 2] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402

from flowsentinel.models.deep import cnn_bilstm  # noqa: E402
from flowsentinel.models.engines import DEFAULT_OPSET, InferenceConfig, OnnxEngine, _exported_graph  # noqa: E402
from flowsentinel.models.trees import ExtraTreesDetector  # noqa: E402
from flowsentinel.paths import data_dir  # noqa: E402
from flowsentinel.sampling import stratified_split  # noqa: E402
from flowsentinel.training.experiment import load_dataset  # noqa: E402

SAMPLE = "nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz"
log = logging.getLogger("bench_inference")

#: CNN-BiLSTM sizes tried (constructor arguments); "default" is the current estimator default.
VARIANTS = {
    "default (8,16) p6 h16 d32": {},
    "(32,64) p4 h32 d64": dict(conv_channels=(32, 64), pool=4, lstm_hidden=32, dense=64),
    "(16,32) p4 h16 d32": dict(conv_channels=(16, 32), pool=4, lstm_hidden=16, dense=32),
    "(8,16) p4 h16 d32": dict(conv_channels=(8, 16), pool=4, lstm_hidden=16, dense=32),
    "(16,32) p6 h16 d32": dict(conv_channels=(16, 32), pool=6, lstm_hidden=16, dense=32),
    "(16,32) p8 h32 d64": dict(conv_channels=(16, 32), pool=8, lstm_hidden=32, dense=64),
    "configs/paper.toml network: (32,64) p4 h64 d128 bins32": dict(
        conv_channels=(32, 64), pool=4, lstm_hidden=64, dense=128, dropout=0.0, input_bins=32
    ),
}


def best_rate(fn, batches, repeat: int) -> float:
    fn(batches[0])  # warm-up: first-call allocations, lazy kernels
    n = sum(len(b) for b in batches)
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for b in batches:
            fn(b)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def latency_ms(fn, frames, n_calls: int) -> tuple[float, float]:
    fn(frames[0])
    times = []
    for i in range(n_calls):
        t0 = time.perf_counter()
        fn(frames[i % len(frames)])
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def quantized_scorer(detector, config: InferenceConfig, workdir: Path) -> OnnxEngine:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = workdir / "fp32.onnx", workdir / "int8.onnx"
    src.write_bytes(detector.onnx_graph())
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # the quantizer's advice to pre-process goes to the root logger
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return OnnxEngine(dst, config)


def main() -> int:
    root = data_dir()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=root / SAMPLE)
    parser.add_argument("--train-rows", type=int, default=40_000, help="training flows (stratified subset)")
    parser.add_argument("--test-batches", type=int, default=10, help="held-out batches timed per pass")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", default="1,2", help="thread counts to time (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=300)
    parser.add_argument("--variants", default="all", help="comma-separated variant numbers (0 = default) or 'all'")
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)  # progress on stderr; the tables go to stdout
    threads = [int(t) for t in args.threads.split(",")]
    names = list(VARIANTS)
    if args.variants != "all":
        names = [names[int(i)] for i in args.variants.split(",")]

    data = load_dataset(args.data).flows
    y = data["Attack"].to_numpy(dtype=object)
    n_test = args.test_batches * args.batch
    part = stratified_split(y, (0.7, 0.15, 0.15), seed=0)
    rng = np.random.default_rng(0)
    train_idx = rng.choice(part.train, size=min(args.train_rows, len(part.train)), replace=False)
    train = data.iloc[np.sort(train_idx)].reset_index(drop=True)
    test_idx = np.concatenate([part.test, part.val])
    test = data.iloc[np.sort(rng.choice(test_idx, size=min(n_test, len(test_idx)), replace=False))].reset_index(drop=True)
    y_test = test["Attack"].to_numpy(dtype=object)
    frames = [test.iloc[i : i + args.batch] for i in range(0, len(test), args.batch)]
    singles = [test.iloc[i : i + 1] for i in range(0, 400)]

    rows, arch = [], []

    def macro_f1(labels) -> float:
        return float(f1_score(y_test, labels, average="macro", labels=np.unique(y_test), zero_division=0))

    # ---- Extra Trees, the reference -------------------------------------
    log.info("training Extra Trees on %d flows", len(train))
    trees = ExtraTreesDetector(n_estimators=100, n_jobs=2, random_state=0).fit(train)
    tree_matrix = [trees.features_.transform(f) for f in frames]
    tree_f1 = macro_f1(trees.predict(test))
    p50, p99 = latency_ms(trees.predict_proba, singles, min(args.latency_calls, 100))
    rows.append(("Extra Trees, 100 trees", "sklearn", 2,
                 best_rate(trees.estimator_.predict_proba, tree_matrix, args.repeat),
                 best_rate(trees.predict_proba, frames, args.repeat), p50, p99, None, tree_f1))
    tree_e2e = rows[-1][4]

    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            log.info("training CNN-BiLSTM %s", name)
            torch.set_num_threads(1)
            det = cnn_bilstm(max_epochs=args.epochs, patience=args.epochs, verbose=False, num_threads=1,
                             random_state=0, **VARIANTS[name]).fit(train)
            matrices = [det.features_.transform(f) for f in frames]
            reference = det.predict_proba(test)
            f1 = macro_f1(det.labels_from_proba(reference))
            best_net = best_e2e = 0.0
            for t in threads:
                torch.set_num_threads(t)
                wrapped = copy.deepcopy(det)
                wrapped.use_engine(InferenceConfig(engine="torch", intra_op_threads=t, batch_size=args.batch))
                net = best_rate(wrapped.engine, matrices, args.repeat)
                p50, p99 = latency_ms(wrapped.predict_proba, singles, args.latency_calls)
                rows.append((name, "torch", t, net, best_rate(wrapped.predict_proba, frames, args.repeat), p50, p99, 0.0, f1))
            exporter = _exported_graph(det.torch_module(), det.input_shape, DEFAULT_OPSET).SerializeToString()
            engines = [("onnxruntime", False, "auto"), ("ort, exporter", False, "auto"), ("ort, whole", False, None)]
            engines += [] if args.no_int8 else [("ort int8", True, "auto")]
            for engine, int8, cache_rows in engines:
                for t in threads:
                    config = InferenceConfig(engine="onnx", intra_op_threads=t, batch_size=args.batch, cache_rows=cache_rows)
                    graph = exporter if engine == "ort, exporter" else det.onnx_graph()
                    scorer = quantized_scorer(det, config, Path(tmp)) if int8 else OnnxEngine(graph, config)
                    fast = copy.deepcopy(det)
                    fast.engine_, fast.inference_ = scorer, config
                    proba = fast.predict_proba(test)
                    diff = float(np.abs(proba - reference).max())
                    net = best_rate(scorer, matrices, args.repeat)
                    e2e = best_rate(fast.predict_proba, frames, args.repeat)
                    p50, p99 = latency_ms(fast.predict_proba, singles, args.latency_calls)
                    rows.append((name, engine, t, net, e2e, p50, p99, diff, macro_f1(det.labels_from_proba(proba))))
                    if not int8 and engine != "ort, exporter":
                        best_net, best_e2e = max(best_net, net), max(best_e2e, e2e)
            log.info("%s measured", name)
            module = det.torch_module()
            params = sum(p.numel() for p in module.parameters())
            arch.append((name, module.seq_len, params, f1, best_net, best_e2e))

    print(f"data: {args.data.name}, {len(train):,} training flows ({args.epochs} epochs, a SHORT training), "
          f"{len(test):,} held-out flows timed in batches of {args.batch}, best of {args.repeat} passes")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared: load average "
          f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}")
    print("network = model alone on preprocessed input; end-to-end = predict_proba on flow-table slices "
          "(preprocessing + model); latency = one flow per call, end to end\n")
    print(f"| {'model':<24} | {'engine':<11} | thr | {'network flows/s':>15} | {'end-to-end flows/s':>18} | "
          f"{'p50 ms':>6} | {'p99 ms':>6} | {'max |dp|':>8} | macro-F1 |")
    print(f"|{'-' * 26}|{'-' * 13}|----:|{'-' * 16}:|{'-' * 19}:|{'-' * 7}:|{'-' * 7}:|{'-' * 9}:|{'-' * 9}:|")
    for name, engine, t, net, e2e, p50, p99, diff, f1 in rows:
        d = "" if diff is None else f"{diff:.1e}"
        print(f"| {name:<24} | {engine:<11} | {t:>3} | {net:>15,.0f} | {e2e:>18,.0f} | {p50:>6.2f} | {p99:>6.2f} | "
              f"{d:>8} | {f1:>8.4f} |")
    print(f"\nCNN-BiLSTM sizes through ONNX Runtime (best of the thread counts and slicings timed) against >= 100,000 flows/s and Extra Trees "
          f"end-to-end ({tree_e2e:,.0f} flows/s):\n")
    print(f"| {'model':<24} | LSTM steps | params | macro-F1 | {'network flows/s':>15} | {'end-to-end flows/s':>18} | "
          f"net >= 100k | e2e >= 100k | e2e >= trees |")
    print(f"|{'-' * 26}|-----------:|-------:|---------:|{'-' * 16}:|{'-' * 19}:|:-----------:|:-----------:|:------------:|")
    for name, steps, params, f1, net, e2e in arch:
        yes = lambda ok: "yes" if ok else "no"  # noqa: E731
        print(f"| {name:<24} | {steps:>10} | {params:>6,} | {f1:>8.4f} | {net:>15,.0f} | {e2e:>18,.0f} | "
              f"{yes(net >= 1e5):^11} | {yes(e2e >= 1e5):^11} | {yes(e2e >= tree_e2e):^12} |")
    print(f"\nExtra Trees macro-F1 on the same flows: {tree_f1:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
