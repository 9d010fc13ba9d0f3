"""The UDP socket an exporter sends to: bound once, read in bursts, its kernel drops counted.

>>> with UdpListener("127.0.0.1", 0, receive_buffer=1 << 20) as rx:
...     tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
...     _ = tx.sendto(b"\\x00\\x09hello", rx.address)
...     got = rx.receive(timeout=2.0, max_packets=10)
...     tx.close()
>>> [(data, host) for data, host in got]
[(b'\\x00\\thello', '127.0.0.1')]
"""

from __future__ import annotations

import errno
import logging
import select
import socket

from ..errors import ConfigError
from .counters import kernel_drops

__all__ = ["UdpListener", "MAX_DATAGRAM"]

log = logging.getLogger(__name__)

#: Largest UDP payload over IPv4.
MAX_DATAGRAM = 65_535
# Not exported by every Python build's socket module; the Linux value.
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class UdpListener:
    """A non-blocking UDP socket bound to ``host:port`` (port 0: any free port, see :attr:`address`)."""

    def __init__(self, host: str, port: int, *, receive_buffer: int = 8 * 1024 * 1024):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._set_buffer(receive_buffer)
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            reason = errno.errorcode.get(exc.errno or 0, "")
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc} ({reason}); "
                              "choose another --listen address or port") from None
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()[:2]
        self._buf = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buf)

    def _set_buffer(self, size: int) -> None:
        # SO_RCVBUFFORCE may exceed net.core.rmem_max but needs CAP_NET_ADMIN.
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        # Linux reports twice the size asked for (it counts its bookkeeping too).
        got = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        self.receive_buffer = got
        if got < size:
            log.warning("receive buffer is %d bytes, not the %d asked for (net.core.rmem_max limits it; "
                        "raise it with sysctl or run with CAP_NET_ADMIN)", got, size)

    def receive(self, timeout: float, max_packets: int) -> list[tuple[bytes, str]]:
        """Datagrams and their senders' addresses: waits up to ``timeout`` s for one, then takes what is queued."""
        out: list[tuple[bytes, str]] = []
        if max_packets <= 0:
            return out
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0.0))
        if not ready:
            return out
        recv_into, view = self.sock.recvfrom_into, self._view
        for _ in range(max_packets):
            try:
                n, addr = recv_into(self._buf)
            except (BlockingIOError, InterruptedError):
                break
            out.append((bytes(view[:n]), addr[0]))
        return out

    def drops(self) -> int:
        """Datagrams the kernel dropped on this socket because its buffer was full (0 where unknown)."""
        value = kernel_drops(self.sock)
        return value or 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "UdpListener":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
