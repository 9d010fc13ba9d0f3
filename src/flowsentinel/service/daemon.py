"""The ``flowsentinel serve`` process: the HTTP API, the producers, and the signals.

uvicorn serves the API from a thread of its own; the main thread owns the
signals and, with ``--interface``, runs the live meter (nfstream's streamer
is stopped by an interrupt in the thread that iterates it). Every producer
hands its frames to the one :class:`~flowsentinel.service.scorer.Scorer`
through ``submit``.

Signals:

* ``SIGHUP``: reopen the alert file (logrotate's ``postrotate``) and read
  the token file again.
* ``SIGTERM`` / ``SIGINT``: drain and exit 0: ``/readyz`` turns 503, the
  listener closes, requests in progress are answered, queued frames are
  scored and their alerts written, and the alert file is closed.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import ssl
import threading
import time

import numpy as np

from ..errors import ConfigError, MeterError, UsageError
from .config import ServiceConfig

__all__ = ["Daemon", "collector_source"]

log = logging.getLogger("flowsentinel.service")

#: Seconds to wait for the listener to come up before giving up.
_START_TIMEOUT = 60.0


def collector_source(config: ServiceConfig):
    """The flow frames of a NetFlow/IPFIX collector on ``config.collect`` (``HOST:PORT``).

    :func:`flowsentinel.collector.collect_frames`: an iterable of DataFrames
    with the NF columns and a ``close()`` that ends the iteration from
    another thread.
    """
    host, _, port = config.collect.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"serve --collect {config.collect!r}: expected HOST:PORT, e.g. 127.0.0.1:2055")
    from ..collector import collect_frames

    return collect_frames(host.strip("[]"), int(port))


class Daemon:
    """Runs a service until SIGTERM.

    Args:
        config: the :class:`ServiceConfig`.
        chunk_flows: flows per frame from the live meter; 1 scores each flow
            as soon as the meter closes it (the meter holds a frame until it
            is full, so a larger value delays alerts on a quiet link).
        idle_timeout, active_timeout: the live meter's flow timeouts (s).
    """

    def __init__(self, config: ServiceConfig, *, chunk_flows: int = 1, idle_timeout: int = 120,
                 active_timeout: int = 1800):
        self.config = config
        self.chunk_flows = chunk_flows
        self.idle_timeout = idle_timeout
        self.active_timeout = active_timeout
        self._stopping = False

    # ---- the HTTP server -----------------------------------------------------
    def _server(self, runtime):
        import uvicorn

        from .app import build_app
        from .limits import guarded_protocol

        c, limits = self.config, self.config.limits
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
        except ImportError:
            from uvicorn.protocols.http.h11_impl import H11Protocol as base
        ucfg = uvicorn.Config(
            build_app(runtime), host=c.host, port=int(c.port), http=guarded_protocol(base, limits, runtime.metrics),
            lifespan="off", access_log=False, log_config=None, server_header=False,
            timeout_keep_alive=int(max(1, round(limits.idle_timeout))),
            timeout_graceful_shutdown=int(max(1, round(c.drain_timeout))), backlog=2048,
            ssl_certfile=str(c.tls_cert) if c.tls else None, ssl_keyfile=str(c.tls_key) if c.tls else None,
        )
        try:
            ucfg.load()
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"serve: cannot use the TLS certificate {c.tls_cert} and key {c.tls_key}: {exc}") from None
        if ucfg.ssl is not None:
            ucfg.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        return uvicorn.Server(ucfg)

    def _listen(self, server) -> threading.Thread:
        thread = threading.Thread(target=server.run, name="flowsentinel-http", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            server.should_exit = True
            raise ConfigError(f"serve: cannot listen on {self.config.host}:{self.config.port} "
                              "(in use, or not an address of this host?); the log above says why")
        scheme = "https" if self.config.tls else "http"
        sockets = [s for srv in server.servers for s in srv.sockets]
        where = ", ".join(f"{scheme}://{s.getsockname()[0]}:{s.getsockname()[1]}" for s in sockets)
        log.info("listening on %s", where)
        return thread

    # ---- running ---------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; 0 after a clean drain."""
        from .runtime import Runtime

        if self.config.collect and self.config.interface:
            log.info("scoring flows from the collector on %s and the meter on %s", self.config.collect,
                     self.config.interface)
        collector = collector_source(self.config) if self.config.collect else None
        runtime = Runtime(self.config)
        try:
            server = self._server(runtime)
            http = self._listen(server)
        except BaseException:
            runtime.close(0)
            raise
        control: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()
        metering = [False]

        pid = os.getpid()

        def on_stop(signum, frame):
            if os.getpid() != pid:
                # A meter process forked by nfstream inherits this handler;
                # there the signal means what it always does.
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            self._stopping = True
            control.put("stop")
            if metering[0]:
                # Wakes nfstream's streamer in this thread; it stops its meter processes.
                raise KeyboardInterrupt

        def on_hup(signum, frame):
            control.put("reload")

        previous = {s: signal.signal(s, h) for s, h in
                    ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup))}
        controller = threading.Thread(target=self._control, args=(control, runtime, stop), name="flowsentinel-control",
                                      daemon=True)
        controller.start()
        failure: BaseException | None = None
        producers = []
        try:
            if collector is not None:
                producers.append(self._produce_in_thread(collector, "collector", runtime, stop))
            if self.config.interface:
                metering[0] = True
                try:
                    self._meter(runtime, stop)
                finally:
                    metering[0] = False
            while not stop.wait(0.5):
                if not http.is_alive():
                    failure = ConfigError("serve: the HTTP server stopped by itself; the log above says why")
                    break
        except KeyboardInterrupt:
            pass
        except BaseException as exc:
            failure = exc
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._drain(runtime, server, http, collector, producers)
            control.put(None)
        if failure is not None:
            raise failure
        return 0

    def _control(self, control: queue.SimpleQueue, runtime, stop: threading.Event) -> None:
        while True:
            event = control.get()
            if event is None:
                return
            if event == "reload":
                log.info("SIGHUP: reopening the alert file and reading the tokens again")
                runtime.reload()
            elif event == "stop" and not stop.is_set():
                log.info("stopping: draining requests in progress and queued flows")
                runtime.draining = True
                stop.set()

    def _meter(self, runtime, stop: threading.Event) -> None:
        from ..metering import MeterConfig, meter_interface

        config = MeterConfig(idle_timeout=self.idle_timeout, active_timeout=self.active_timeout,
                             chunk_size=self.chunk_flows)
        run = meter_interface(self.config.interface, config)
        log.info("metering %s live (flows of %d, idle timeout %d s)", self.config.interface, self.chunk_flows,
                 self.idle_timeout)
        self._feed(iter(run), f"interface {self.config.interface}", "interface", runtime, self._host_context())
        if not self._stopping and not stop.is_set():
            raise MeterError(f"{self.config.interface}: the live meter stopped by itself ({run.stats.summary()})")

    def _host_context(self):
        """A fresh host context for one producer's stream of flows, or ``None`` when it is off."""
        from ..serving.context import HostContext, HostContextConfig

        config = self.config.host_context or HostContextConfig()
        return HostContext(config) if config.enabled else None

    @staticmethod
    def _feed(frames, where: str, source: str, runtime, hosts=None) -> None:
        n = 0
        try:
            for frame in frames:
                if len(frame):
                    # Host context counts in stream order, here, before the frame joins the scorer's queue.
                    context = hosts.mark(frame) if hosts is not None else None
                    runtime.scorer.submit(frame, source, rows=np.arange(n + 1, n + len(frame) + 1),
                                          context=context)
                    n += len(frame)
        finally:
            log.info("%s: %d flows submitted", where, n)

    def _produce_in_thread(self, frames, source: str, runtime, stop: threading.Event) -> threading.Thread:
        def work():
            try:
                self._feed(frames, source, source, runtime, self._host_context())
            except Exception as exc:
                runtime.metrics.failed("producer")
                log.error("%s stopped: %s: %s", source, type(exc).__name__, exc)
            if not stop.is_set():
                log.error("%s ended by itself; stopping the service", source)
                runtime.draining = True
                stop.set()

        thread = threading.Thread(target=work, name=f"flowsentinel-{source}", daemon=True)
        thread.start()
        return thread

    def _drain(self, runtime, server, http: threading.Thread, collector, producers) -> None:
        t0 = time.monotonic()
        runtime.draining = True
        if collector is not None and hasattr(collector, "close"):
            collector.close()
        for thread in producers:
            thread.join(self.config.drain_timeout)
        # uvicorn closes the listener, answers what is in progress, then returns.
        server.should_exit = True
        http.join(self.config.drain_timeout + 5)
        left = max(0.0, self.config.drain_timeout - (time.monotonic() - t0))
        drained = runtime.close(left)
        log.info("stopped in %.1f s%s", time.monotonic() - t0, "" if drained else " (queue not drained)")
