"""Settings of the scoring service, checked once when it starts.

:class:`ServiceConfig` holds where the service listens, who may call it, how
much it accepts and where it writes alerts; :class:`Limits` the refusal
thresholds. Both are frozen: the daemon builds them from the command line
and nothing changes them while it runs.

>>> ServiceConfig(model_dir="m").limits.max_flows
10000
>>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("0.0.0.0")
(True, True, False)
>>> ServiceConfig(model_dir="m", host="0.0.0.0").check_exposure(has_tokens=False)
Traceback (most recent call last):
...
flowsentinel.errors.ConfigError: serve: refusing to listen on 0.0.0.0 (beyond loopback) without tokens; create one with 'flowsentinel token add --file FILE --name NAME' and pass --token-file FILE, or pass --insecure-no-auth to serve every client that reaches the port
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["Limits", "ServiceConfig", "is_loopback"]


def is_loopback(host: str) -> bool:
    """``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        # A host name other than localhost may resolve to anything: not loopback.
        return False


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the service; past each limit it is refused.

    Attributes:
        max_body_bytes: request body size (413 above it). 16 MiB holds 10,000
            NF v2 flows as JSON (about 1.2 kB each) with room to spare.
        max_flows: flows per ``POST /v1/score`` (413 above it).
        body_timeout: seconds to receive a whole request body (408 after):
            a client that trickles its body holds a connection and no more.
        header_timeout: seconds from a connection's start (or the end of its
            previous response) to a complete request head; the connection is
            closed after it (slow-header clients).
        idle_timeout: seconds a kept-alive connection may sit idle.
        request_timeout: seconds from a request's head to its answer (503
            after): scoring that waits longer than this on a full queue is
            given up rather than answered late.
        max_concurrency: requests to ``/v1/score`` and ``/v1/model`` (PUT) in
            progress at once; the next one gets 503 with ``Retry-After``.
            ``/healthz``, ``/readyz`` and ``/metrics`` are not counted, so
            that monitoring answers under load.
        max_connections: open connections; the next one is answered 503 and
            closed.
    """

    max_body_bytes: int = 16 * 1024 * 1024
    max_flows: int = 10_000
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    idle_timeout: float = 5.0
    request_timeout: float = 30.0
    max_concurrency: int = 64
    max_connections: int = 1024

    def __post_init__(self):
        for name in ("max_body_bytes", "max_flows", "max_concurrency", "max_connections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: limit {name} must be at least 1, got {getattr(self, name)}")
        for name in ("body_timeout", "header_timeout", "idle_timeout", "request_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"serve: limit {name} must be a positive number of seconds, got {getattr(self, name)}")


@dataclass(frozen=True)
class ServiceConfig:
    """How ``flowsentinel serve`` runs.

    Attributes:
        model_dir: the saved model scored with at start.
        host, port: where the HTTP API listens; loopback by default.
        token_file: bearer tokens, stored hashed (``flowsentinel token``);
            ``None`` serves without authentication, which is allowed on
            loopback only unless ``allow_unauthenticated``.
        allow_unauthenticated: listen beyond loopback without tokens.
        tls_cert, tls_key: PEM certificate chain and key; HTTPS when both
            are given.
        model_root: the folder that ``PUT /v1/model`` may load models from
            (after resolving symbolic links and ``..``); ``None`` disables
            swaps over HTTP.
        alerts_path: EVE alert file (JSON lines), appended to; reopened on
            SIGHUP for logrotate. ``None`` writes no file.
        rotate_bytes: rotate the alert file when it reaches this size
            (``alerts.jsonl.1`` ... ``.N``); ``None`` leaves rotation to
            logrotate.
        rotate_keep: rotated files kept.
        interface: also meter this interface live and score its flows.
        collect: also run a NetFlow/IPFIX collector on ``HOST:PORT``.
        engine, threads: how the network runs (see
            :class:`~flowsentinel.models.engines.InferenceConfig`).
        workers: scoring threads; each scores one batch at a time.
        batch_flows: most flows scored in one network call; requests that
            wait together are scored together up to this many.
        drain_timeout: seconds SIGTERM waits for requests in progress and
            queued frames before the process exits.
        limits: the refusal thresholds (:class:`Limits`).
        host_context: host context for the ``interface`` and ``collect``
            flows, as ``detect`` and ``collect`` run it
            (:class:`~flowsentinel.serving.context.HostContextConfig`;
            ``None``: its defaults). The HTTP API scores each request's
            flows by the model alone.
    """

    model_dir: str | Path
    host: str = "127.0.0.1"
    port: int = 8750
    token_file: str | Path | None = None
    allow_unauthenticated: bool = False
    tls_cert: str | Path | None = None
    tls_key: str | Path | None = None
    model_root: str | Path | None = None
    alerts_path: str | Path | None = None
    rotate_bytes: int | None = None
    rotate_keep: int = 5
    interface: str | None = None
    collect: str | None = None
    engine: str = "auto"
    threads: int = 1
    workers: int = 1
    batch_flows: int = 4096
    drain_timeout: float = 30.0
    limits: Limits = field(default_factory=Limits)
    host_context: Any = None

    def __post_init__(self):
        if not 0 <= int(self.port) <= 65535:
            raise ConfigError(f"serve: port must be 0-65535, got {self.port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("serve: TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"serve: {name.replace('_', '-')} {path}: no such file")
        if self.model_root is not None and not Path(self.model_root).is_dir():
            raise ConfigError(f"serve: model root {self.model_root}: no such folder")
        if self.rotate_bytes is not None and self.rotate_bytes < 1024:
            raise ConfigError(f"serve: rotate size must be at least 1024 bytes, got {self.rotate_bytes}")
        if self.rotate_keep < 1:
            raise ConfigError(f"serve: rotate keep must be at least 1, got {self.rotate_keep}")
        for name in ("threads", "workers", "batch_flows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"serve: {name} must be at least 1, got {getattr(self, name)}")
        if self.drain_timeout < 0:
            raise ConfigError(f"serve: drain timeout must not be negative, got {self.drain_timeout}")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def check_exposure(self, has_tokens: bool) -> None:
        """Refuse to serve beyond loopback without tokens, unless told so explicitly."""
        if not has_tokens and not self.allow_unauthenticated and not is_loopback(self.host):
            raise ConfigError(
                f"serve: refusing to listen on {self.host} (beyond loopback) without tokens; create one with "
                "'flowsentinel token add --file FILE --name NAME' and pass --token-file FILE, or pass "
                "--insecure-no-auth to serve every client that reaches the port"
            )
