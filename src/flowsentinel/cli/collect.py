"""``flowsentinel collect``: receive NetFlow v5/v9 and IPFIX, score flows as they arrive, write alerts."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from ..choices import ENGINES, OUTPUT_FORMATS
from ._common import add_host_context_arguments, add_model_argument, host_context_config, model_dir_of, output

NAME = "collect"
HELP = "receive NetFlow v5/v9 and IPFIX from exporters and score the flows as they arrive"

def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..collector.config import CollectorConfig

    d = CollectorConfig()
    p.add_argument("--listen", required=True, metavar="HOST:PORT", help="UDP address to receive on, e.g. 0.0.0.0:2055")
    add_model_argument(p, shipped="exporter")
    p.add_argument("--output", "-o", help="alerts and verdicts (EVE JSON lines or CSV); default: standard output")
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="jsonl")
    p.add_argument("--alerts-only", action="store_true", help="write alerts only, not every flow")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="network engine (default auto: ONNX Runtime where installed, else PyTorch)")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("--receive-buffer", type=int, default=d.receive_buffer, metavar="BYTES",
                   help=f"socket receive buffer (default {d.receive_buffer:,})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"flows per batch (default {d.batch_size})")
    p.add_argument("--batch-wait", type=float, default=d.batch_wait_s, metavar="S",
                   help=f"longest a record waits for its batch (default {d.batch_wait_s})")
    p.add_argument("--stitch-wait", type=float, default=d.stitch_wait_s, metavar="S",
                   help=f"longest a one-way record waits for the other direction (default {d.stitch_wait_s})")
    p.add_argument("--template-timeout", type=float, default=d.template_timeout_s, metavar="S",
                   help=f"drop templates not refreshed for this long (default {d.template_timeout_s:g})")
    p.add_argument("--no-sampling", action="store_true", help="do not scale counters by the declared sampling rate")
    p.add_argument("--stats-every", type=float, default=d.stats_every_s, metavar="S",
                   help=f"log the counters every S seconds (default {d.stats_every_s:g}; 0: never)")
    p.add_argument("--max-packets", type=int, help="stop after N datagrams")
    p.add_argument("--max-seconds", type=float, help="stop after N seconds")
    p.add_argument("--exit-idle", type=float, metavar="S", help="stop after S seconds without a datagram")
    p.add_argument("--summary", help="also write the counters as JSON here")
    add_host_context_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..collector import Collector, CollectorConfig, UdpListener, parse_listen
    from ..collector.scoring import Scorer

    host, port = parse_listen(args.listen)
    config = CollectorConfig(receive_buffer=args.receive_buffer, batch_size=args.batch_size,
                             batch_wait_s=args.batch_wait, stitch_wait_s=args.stitch_wait,
                             template_timeout_s=args.template_timeout, apply_sampling=not args.no_sampling,
                             stats_every_s=args.stats_every)
    stopping: list[int] = []

    def stop(signum, _frame):
        stopping.append(signum)

    with output(args.output, live=True) as out:
        scorer = Scorer(model_dir_of(args), out, fmt=args.format, only_alerts=args.alerts_only, engine=args.engine,
                        threads=args.threads, host_context=host_context_config(args))
        needed = scorer.required_columns
        print(f"collect: the model needs {len(needed)} flow columns: {', '.join(needed)}", file=sys.stderr)

        def check(columns: list[str], where: str) -> None:
            scorer.check_columns(columns, where)
            print(f"collect: {where} supplies all {len(needed)} of them ({len(columns)} NF columns in all)",
                  file=sys.stderr)

        collector = Collector(config, scorer, check=check)
        with UdpListener(host, port, receive_buffer=config.receive_buffer) as listener:
            print(f"collect: listening on {host}:{listener.address[1]} (receive buffer {listener.receive_buffer:,} "
                  "bytes)", file=sys.stderr, flush=True)
            previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                counters = collector.run(listener, stop=lambda: bool(stopping), max_packets=args.max_packets,
                                         max_seconds=args.max_seconds, idle_exit_s=args.exit_idle)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
    if stopping:
        print(f"collect: stopped by {signal.Signals(stopping[0]).name}; pending flows scored", file=sys.stderr)
    print(f"collect: {counters.line()}", file=sys.stderr)
    if args.summary:
        from ..io.outputs import write_text

        write_text(args.summary, json.dumps(counters.as_dict(), indent=2))
    return 0
