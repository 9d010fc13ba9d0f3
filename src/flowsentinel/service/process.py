"""A service in a child process, started and stopped by the caller (tests, benchmarks, scripts).

::

    with ServiceProcess(["--model-dir", "models/cnn-bilstm"]) as svc:
        ScoreClient(svc.url).score(frame)
    svc.returncode        # 0 after a clean SIGTERM drain

The child is ``python -m flowsentinel.cli serve`` on a free loopback port
(unless the arguments name one); its log goes to a file. Waiting for it and
stopping it are bounded in time.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import ServiceError

__all__ = ["ServiceProcess", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServiceProcess:
    """``flowsentinel serve ARGS`` as a child process.

    Args:
        args: arguments after ``serve``; ``--host``/``--port`` are added
            when absent (loopback, a free port).
        log_path: where the child's standard error goes (default a
            temporary file, kept for reading after a failure).
        env: environment of the child (default this one).
        start_timeout: seconds to wait for ``/healthz``.
        prefix: a command the child runs under (``ip netns exec NS``); then
            ``/healthz`` is not reachable from here and the child is ready
            when its log says it listens.
    """

    def __init__(self, args: list[str], *, log_path: str | Path | None = None, env: dict | None = None,
                 start_timeout: float = 90.0, prefix: list[str] | None = None):
        self.args = list(args)
        if "--host" not in self.args:
            self.args += ["--host", "127.0.0.1"]
        self.host = self.args[self.args.index("--host") + 1]
        if "--port" not in self.args:
            self.args += ["--port", str(free_port(self.host))]
        self.port = int(self.args[self.args.index("--port") + 1])
        self.tls = "--tls-cert" in self.args
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="flowsentinel-serve-", suffix=".log")[1])
        self.env = env
        self.start_timeout = start_timeout
        self.prefix = list(prefix or [])
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> "ServiceProcess":
        env = dict(os.environ if self.env is None else self.env)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([*self.prefix, sys.executable, "-m", "flowsentinel.cli", "serve", *self.args],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.start_timeout
        context = ssl._create_unverified_context() if self.tls else None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise ServiceError(f"serve exited with {self.returncode} before answering; its log:\n{self.log()[-3000:]}")
            if self.prefix:
                if "listening on" in self.log():
                    return self
                time.sleep(0.2)
                continue
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2, context=context) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.kill()
        raise ServiceError(f"serve did not answer /healthz within {self.start_timeout:g} s; its log:\n{self.log()[-3000:]}")

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait (SIGKILL after ``timeout``); the exit status."""
        if self.proc is None:
            return self.returncode if self.returncode is not None else 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self.returncode = self.proc.returncode

    def __enter__(self) -> "ServiceProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
