"""``flowsentinel serve``: the scoring service (HTTP API, live meter, alert file) until SIGTERM."""

from __future__ import annotations

import argparse
import re

from ..choices import ENGINES
from ..errors import UsageError
from ._common import add_host_context_arguments, add_model_argument, host_context_config, model_dir_of

NAME = "serve"
HELP = "run the scoring service: an HTTP API, and optionally the live meter, into one alert file"

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


def size_bytes(text: str) -> int:
    """``1048576``, ``512K``, ``16M``, ``1G`` (powers of 1024) as bytes.

    >>> size_bytes("16M"), size_bytes("512k"), size_bytes("2048")
    (16777216, 524288, 2048)
    """
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1048576, 512K, 16M, 1G)")
    unit = (match.group(2) or "b")[0].lower()
    return int(match.group(1)) * {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def add_arguments(s: argparse.ArgumentParser) -> None:
    from ..service.config import Limits, ServiceConfig

    d, lim = ServiceConfig(model_dir=""), Limits()
    add_model_argument(s, "the model scored with at start")
    s.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host})")
    s.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    s.add_argument("--token-file", help="bearer tokens, hashed (made by 'flowsentinel token add')")
    s.add_argument("--insecure-no-auth", action="store_true",
                   help="listen beyond loopback without tokens (any client that reaches the port may score and swap)")
    s.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS")
    s.add_argument("--tls-key", help="PEM private key of --tls-cert")
    s.add_argument("--model-root", help="folder that PUT /v1/model may load models from (default: swaps off)")
    s.add_argument("--alerts", help="append EVE alerts (JSON lines) here; reopened on SIGHUP")
    s.add_argument("--rotate-size", type=size_bytes, help="rotate the alert file at this size (e.g. 100M)")
    s.add_argument("--rotate-keep", type=int, default=d.rotate_keep, help=f"rotated files kept (default {d.rotate_keep})")
    s.add_argument("--interface", "-i", help="also meter this interface live and score its flows")
    s.add_argument("--collect", metavar="HOST:PORT", help="also collect NetFlow/IPFIX on HOST:PORT and score it")
    s.add_argument("--chunk-flows", type=int, default=1,
                   help="live meter: flows per scoring frame (default 1: each flow as soon as it ends)")
    s.add_argument("--flow-idle-timeout", type=int, default=120, help="live meter: flow idle timeout, s (default 120)")
    s.add_argument("--flow-active-timeout", type=int, default=1800, help="live meter: flow active timeout, s (default 1800)")
    s.add_argument("--engine", choices=ENGINES, default=d.engine, help="network engine (default auto)")
    s.add_argument("--threads", type=int, default=d.threads, help=f"inference threads per scoring thread (default {d.threads})")
    s.add_argument("--workers", type=int, default=d.workers, help=f"scoring threads (default {d.workers})")
    s.add_argument("--batch-flows", type=int, default=d.batch_flows,
                   help=f"most flows scored in one network call (default {d.batch_flows})")
    s.add_argument("--drain-timeout", type=float, default=d.drain_timeout,
                   help=f"SIGTERM: seconds to finish what is in progress (default {d.drain_timeout:g})")
    add_host_context_arguments(s)
    g = s.add_argument_group("limits (each refusal is counted in /metrics and logged)")
    g.add_argument("--max-body", type=size_bytes, default=lim.max_body_bytes, help="largest request body (413 above; default 16M)")
    g.add_argument("--max-flows", type=int, default=lim.max_flows, help=f"flows per request (413 above; default {lim.max_flows})")
    g.add_argument("--body-timeout", type=float, default=lim.body_timeout, help=f"s to receive a body (408 after; default {lim.body_timeout:g})")
    g.add_argument("--header-timeout", type=float, default=lim.header_timeout,
                   help=f"s to receive a request head; the connection is closed after (default {lim.header_timeout:g})")
    g.add_argument("--keepalive-timeout", type=float, default=lim.idle_timeout,
                   help=f"s an idle connection is kept (default {lim.idle_timeout:g})")
    g.add_argument("--request-timeout", type=float, default=lim.request_timeout,
                   help=f"s from request head to answer (503 after; default {lim.request_timeout:g})")
    g.add_argument("--max-concurrency", type=int, default=lim.max_concurrency,
                   help=f"scoring and admin requests at once (503 above; default {lim.max_concurrency})")
    g.add_argument("--max-connections", type=int, default=lim.max_connections,
                   help=f"open connections (503 above; default {lim.max_connections})")


def run(args: argparse.Namespace) -> int:
    from ..service.config import Limits, ServiceConfig
    from ..service.daemon import Daemon

    if args.chunk_flows < 1:
        raise UsageError(f"serve: --chunk-flows must be at least 1, got {args.chunk_flows}")
    limits = Limits(max_body_bytes=args.max_body, max_flows=args.max_flows, body_timeout=args.body_timeout,
                    header_timeout=args.header_timeout, idle_timeout=args.keepalive_timeout,
                    request_timeout=args.request_timeout, max_concurrency=args.max_concurrency,
                    max_connections=args.max_connections)
    config = ServiceConfig(
        model_dir=model_dir_of(args), host=args.host, port=args.port, token_file=args.token_file,
        allow_unauthenticated=args.insecure_no_auth, tls_cert=args.tls_cert, tls_key=args.tls_key,
        model_root=args.model_root, alerts_path=args.alerts, rotate_bytes=args.rotate_size, rotate_keep=args.rotate_keep,
        interface=args.interface, collect=args.collect, engine=args.engine, threads=args.threads, workers=args.workers,
        batch_flows=args.batch_flows, drain_timeout=args.drain_timeout, limits=limits,
        host_context=host_context_config(args),
    )
    return Daemon(config, chunk_flows=args.chunk_flows, idle_timeout=args.flow_idle_timeout,
                  active_timeout=args.flow_active_timeout).run()
