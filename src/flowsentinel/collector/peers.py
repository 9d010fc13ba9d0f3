"""Real exporters and a real peer collector, run on loopback for tests, golden files and benchmarks.

* :func:`softflowd_export` runs softflowd on a capture file and records the
  datagrams it exports (NetFlow v5, v9, IPFIX, bidirectional IPFIX).
* :func:`pmacct_export` does the same with pmacct's ``pmacctd`` and its
  ``nfprobe`` plugin, a second, independent exporter.
* :func:`nfcapd_collect` sends recorded datagrams to nfdump's ``nfcapd``
  and returns the records it stored, as ``nfdump -o json`` prints them.

Every process is started with a deadline and stopped before the function
returns; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import FlowReadError, MeterError
from .counters import udp_sockets
from .nfdump import nfdump_json_records
from .transport import UdpListener

__all__ = ["Export", "EXPORTS", "softflowd_export", "pmacct_export", "nfcapd_collect", "send_datagrams",
           "tool_missing", "free_port", "listening"]

log = logging.getLogger(__name__)

#: The softflowd exports the golden tests cover: name -> softflowd options.
EXPORTS: dict[str, tuple[str, ...]] = {
    "v5": ("-v", "5", "-a"),
    "v9": ("-v", "9", "-a"),
    "ipfix": ("-v", "10", "-a"),
    "ipfix-biflow": ("-v", "10", "-b", "-a"),
}
_RECEIVE_BUFFER = 64 * 1024 * 1024
_MAX_DATAGRAMS = 500_000


@dataclass
class Export:
    """The datagrams an exporter sent, in order, and what the kernel dropped receiving them."""

    datagrams: list[bytes]
    kernel_drops: int
    command: list[str]


def tool_missing(*names: str) -> str | None:
    """A reason to skip when a peer program is not installed, else ``None``."""
    missing = [n for n in names if shutil.which(n) is None]
    return f"needs {', '.join(missing)} (Debian packages softflowd, pmacct, nfdump)" if missing else None


def _record(command: list[str], rx: UdpListener, timeout: float, quiet_s: float) -> list[bytes]:
    datagrams: list[bytes] = []
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    exited_at = None
    try:
        while len(datagrams) < _MAX_DATAGRAMS:
            got = rx.receive(0.05, 4096)
            datagrams.extend(d for d, _ in got)
            now = time.monotonic()
            if proc.poll() is not None:
                exited_at = exited_at or now
                if not got and now - exited_at >= quiet_s:
                    break
            if now > deadline:
                raise MeterError(f"{' '.join(command)}: still running after {timeout:.0f} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=10)
    if proc.returncode not in (0, None, -signal.SIGKILL):
        raise MeterError(f"{' '.join(command)}: exit {proc.returncode}: {err.strip()[:300]}")
    return datagrams


def softflowd_export(capture: str | os.PathLike, options: tuple[str, ...] = EXPORTS["v9"], *,
                     timeout: float = 60.0, quiet_s: float = 0.05) -> Export:
    """Run ``softflowd -r CAPTURE`` exporting to a local socket; returns what it sent."""
    exe = shutil.which("softflowd")
    if exe is None:
        raise MeterError("softflowd is not installed (Debian package softflowd)")
    with UdpListener("127.0.0.1", 0, receive_buffer=_RECEIVE_BUFFER) as rx, tempfile.TemporaryDirectory() as tmp:
        host, port = rx.address
        # -c none: softflowd 1.1.0 reading a file blocks on its control socket otherwise.
        command = [exe, "-r", str(capture), "-n", f"{host}:{port}", "-d", "-c", "none",
                   "-p", str(Path(tmp) / "softflowd.pid"), *options]
        datagrams = _record(command, rx, timeout, quiet_s)
        return Export(datagrams, rx.drops(), command)


def pmacct_export(capture: str | os.PathLike, version: int = 9, *, timeout: float = 60.0,
                  quiet_s: float = 0.5) -> Export:
    """Run ``pmacctd`` with its ``nfprobe`` plugin over a capture file; returns what it sent."""
    exe = shutil.which("pmacctd")
    if exe is None:
        raise MeterError("pmacctd is not installed (Debian package pmacct)")
    with UdpListener("127.0.0.1", 0, receive_buffer=_RECEIVE_BUFFER) as rx, tempfile.TemporaryDirectory() as tmp:
        host, port = rx.address
        conf = Path(tmp) / "pmacctd.conf"
        conf.write_text("\n".join([
            "daemonize: false",
            f"pcap_savefile: {capture}",
            "pcap_savefile_wait: false",
            "plugins: nfprobe",
            f"nfprobe_receiver: {host}:{port}",
            f"nfprobe_version: {version}",
            "aggregate: src_host, dst_host, src_port, dst_port, proto, tos, tcpflags",
            "nfprobe_timeouts: tcp=1:tcp.rst=1:tcp.fin=1:udp=1:icmp=1:general=1:maxlife=60:expint=1",
            f"pidfile: {Path(tmp) / 'pmacctd.pid'}",
            f"logfile: {Path(tmp) / 'pmacctd.log'}",
            "",
        ]))
        datagrams = _record([exe, "-f", str(conf)], rx, timeout, quiet_s)
        return Export(datagrams, rx.drops(), [exe, "-f", str(conf)])


def send_datagrams(datagrams: list[bytes], address: tuple[str, int], *, pace_every: int = 64,
                   pace_s: float = 0.002) -> None:
    """Send recorded datagrams to ``address``, pausing every ``pace_every`` so a receiver keeps up."""
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i, data in enumerate(datagrams, start=1):
            tx.sendto(data, address)
            if pace_every and i % pace_every == 0:
                time.sleep(pace_s)
    finally:
        tx.close()


def listening(port: int) -> bool:
    """Whether a UDP socket is bound to ``port`` (a peer that has started)."""
    return any(row.port == port for row in udp_sockets())


def free_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nfcapd_collect(datagrams: list[bytes], *, timeout: float = 60.0, keep_dir: str | os.PathLike | None = None
                   ) -> tuple[list[dict], str]:
    """Send ``datagrams`` to a fresh ``nfcapd`` and return its records (``nfdump -o json``) and its summary line.

    ``keep_dir`` keeps the nfcapd file(s) there (for ``detect`` tests).
    """
    exe = shutil.which("nfcapd")
    if exe is None:
        raise FlowReadError("nfcapd is not installed (Debian package nfdump)")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = subprocess.Popen([exe, "-p", str(port), "-b", "127.0.0.1", "-w", tmp, "-B", str(8 << 20)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, TZ="UTC"))
        try:
            deadline = time.monotonic() + min(timeout, 10.0)
            while not listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise FlowReadError(f"nfcapd did not start listening on 127.0.0.1:{port}")
                time.sleep(0.02)
            send_datagrams(datagrams, ("127.0.0.1", port))
            time.sleep(0.3)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        summary = next((line.strip() for line in out.splitlines() if "Flows:" in line), "")
        files = sorted(f for f in glob.glob(os.path.join(tmp, "nfcapd.*")) if not f.endswith("current"))
        if not files:
            raise FlowReadError(f"nfcapd wrote no file ({summary or out.strip()[-200:]})")
        records = [r for f in files for r in nfdump_json_records(f, timeout=timeout)]
        if keep_dir is not None:
            for f in files:
                shutil.copy(f, keep_dir)
        return records, summary
