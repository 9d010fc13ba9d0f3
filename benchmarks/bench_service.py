"""Load test of ``flowsentinel serve`` against in-process ``detect`` on the same flows, in one run.

Starts the service as a real process on loopback, has several client
processes post batches of flows for a fixed time (keep-alive connections,
bodies serialised before the clock starts), stops the service with SIGTERM,
and prints one table: throughput, latency percentiles and errors for the
service and for ``detect`` on a file of the same flows (read, scored and
written as EVE JSON lines to /dev/null), with the ratio between them.

    PYTHONPATH=src python benchmarks/bench_service.py                 # 60 s, 4 clients, JSON bodies
    PYTHONPATH=src python benchmarks/bench_service.py --seconds 10 --formats json,arrow

The model is a CNN-BiLSTM trained for one epoch on synthetic flows unless
``--model-dir`` names one; the flows are the first rows of the NF-BoT-IoT-v2
sample from the shared data folder (synthetic flows where it is absent). The
run stops by itself: each client stops at the deadline or after
``--max-requests``.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson


def train_model(directory: Path) -> Path:

    from flowsentinel.models.deep import cnn_bilstm
    from flowsentinel.persistence import save_model
    from flowsentinel.synthetic import generate_flows

    det = cnn_bilstm(max_epochs=1, verbose=False).fit(generate_flows(3000))
    save_model(det, directory)
    return directory


def load_flows(n: int):
    from flowsentinel.io.readers import ReadConfig, read_flows
    from flowsentinel.paths import data_file
    from flowsentinel.schema import ATTACK_COLUMN, DATASET_COLUMN, LABEL_COLUMN

    path = data_file("nf-bot-iot-v2/NF-BoT-IoT-v2-sample.csv.gz")
    if path is None:
        from flowsentinel.synthetic import generate_flows

        frame, where = generate_flows(n, random_state=1), "[SYNTHETIC] generated flows"
    else:
        frame, _ = read_flows(path, ReadConfig(rejects_dir=Path(tempfile.gettempdir())), max_rows=n)
        where = f"first {n:,} flows of {path.name}"
    return frame.drop(columns=[c for c in (LABEL_COLUMN, ATTACK_COLUMN, DATASET_COLUMN) if c in frame.columns]), where


def bodies(frame, batch: int, fmt: str) -> list[tuple[bytes, str]]:
    from flowsentinel.service.client import _body

    return [_body(frame.iloc[i:i + batch], fmt) for i in range(0, len(frame) - batch + 1, batch)]


def detect_baseline(model_dir: Path, csv_path: Path, repeats: int) -> float:
    """Flows per second of in-process detect on the flow file (best of ``repeats``)."""
    from flowsentinel.models.engines import InferenceConfig
    from flowsentinel.persistence import load_model
    from flowsentinel.serving.detect import detect_file

    fast = load_model(model_dir, inference=InferenceConfig(engine="auto", intra_op_threads=1))
    best = 0.0
    for _ in range(repeats):
        with open(os.devnull, "w") as out:
            summary = detect_file(fast, csv_path, out, "jsonl", progress=False, rejects_dir=csv_path.parent)
        best = max(best, summary.n_flows / summary.seconds)
    return best


def client(port: int, token: str, payloads, batch: int, start: float, stop: float, max_requests: int, results):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, errors, sent = [], {}, 0
    while time.time() < start:
        time.sleep(0.001)
    i = os.getpid() % len(payloads)
    while time.time() < stop and sent < max_requests:
        body, media = payloads[i % len(payloads)]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/v1/score", body, {"content-type": media, "authorization": f"Bearer {token}"})
            answer = conn.getresponse()
            data = answer.read()
            ok = answer.status == 200 and orjson.loads(data)["n_flows"] == batch
            why = f"status {answer.status}" if answer.status != 200 else "wrong count"
        except (OSError, http.client.HTTPException) as exc:
            ok, why = False, type(exc).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies.append(time.perf_counter() - t0)
        sent += 1
        if not ok:
            errors[why] = errors.get(why, 0) + 1
    conn.close()
    results.put((latencies, errors))


def load(port: int, token: str, payloads, batch: int, clients: int, seconds: float, max_requests: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start = time.time() + 2.0
    stop = start + seconds
    procs = [ctx.Process(target=client, args=(port, token, payloads, batch, start, stop, max_requests, results))
             for _ in range(clients)]
    for p in procs:
        p.start()
    gathered = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    lat = np.concatenate([np.asarray(g[0]) for g in gathered])
    errors: dict[str, int] = {}
    for _, e in gathered:
        for k, v in e.items():
            errors[k] = errors.get(k, 0) + v
    n_err = sum(errors.values())
    return {"requests": len(lat), "errors": n_err, "why": errors, "flows_per_s": (len(lat) - n_err) * batch / seconds,
            "p50_ms": float(np.percentile(lat, 50) * 1000), "p99_ms": float(np.percentile(lat, 99) * 1000)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", help="a saved model (default: train a small one on synthetic flows)")
    p.add_argument("--seconds", type=float, default=60.0, help="load time per body format (default 60)")
    p.add_argument("--clients", type=int, default=4, help="concurrent client processes (default 4)")
    p.add_argument("--batch", type=int, default=100, help="flows per request (default 100)")
    p.add_argument("--flows", type=int, default=20_000, help="distinct flows to cycle through (default 20,000)")
    p.add_argument("--formats", default="json", help="body formats, comma-separated: json, arrow, csv (default json)")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="per client, a bound besides time")
    p.add_argument("--workers", type=int, default=1, help="the service's scoring threads (default 1)")
    args = p.parse_args(argv)

    from flowsentinel.service.process import ServiceProcess
    from flowsentinel.service.tokens import add_token

    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    model_dir = Path(args.model_dir) if args.model_dir else train_model(work / "model")
    frame, where = load_flows(args.flows)
    csv_path = work / "flows.csv"
    frame.to_csv(csv_path, index=False)
    token = add_token(work / "tokens", "bench", "score")

    detect_rate = detect_baseline(model_dir, csv_path, repeats=3)
    rows = []
    with ServiceProcess(["--model-dir", str(model_dir), "--token-file", str(work / "tokens"),
                         "--alerts", str(work / "alerts.jsonl"), "--workers", str(args.workers),
                         "--max-concurrency", str(max(64, args.clients * 2))], log_path=work / "serve.log") as svc:
        for fmt in args.formats.split(","):
            payloads = bodies(frame, args.batch, fmt)
            rows.append((fmt, load(svc.port, token, payloads, args.batch, args.clients, args.seconds, args.max_requests)))
    status = svc.returncode

    print(f"flowsentinel serve, {args.clients} clients x batches of {args.batch} flows for {args.seconds:g} s per format; "
          f"{where}; model {model_dir}")
    print(f"{'scorer':28}{'flows/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'errors':>8}{'vs detect':>11}")
    print(f"{'detect (in-process, file)':28}{detect_rate:12,.0f}{'':>10}{'':>10}{'':>10}{'':>8}{1.0:11.2f}")
    for fmt, r in rows:
        print(f"{'serve, ' + fmt + ' bodies':28}{r['flows_per_s']:12,.0f}{r['p50_ms']:10.1f}{r['p99_ms']:10.1f}"
              f"{r['requests']:10,}{r['errors']:8,}{r['flows_per_s'] / detect_rate:11.2f}")
        if r["errors"]:
            print(f"  errors: {r['why']}")
    print(f"service exit status after SIGTERM: {status}")
    failed = status != 0 or any(r["errors"] for _, r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
