"""Refusals: what a client may not do, and how the service says no.

Inside a request, :class:`Refused` carries the status, a reason from
:data:`~flowsentinel.service.metrics.REFUSALS` and a message;
:func:`read_body` refuses bodies that are too large (413) or too slow (408).
Below the application, :func:`guarded_protocol` makes uvicorn's HTTP
protocol close connections that do not finish a request head in time
(slow-header clients, which uvicorn itself waits for indefinitely) and
answer 503 to connections past the connection limit. Every refusal is
counted and logged once, with the client address and never a token
(:func:`log_refusal`).
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["Refused", "read_body", "log_refusal", "guarded_protocol"]

log = logging.getLogger("flowsentinel.service")


class Refused(Exception):
    """A request the service will not serve."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.headers = headers or {}


def client_of(scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


def log_refusal(metrics, reason: str, status: int, client: str, what: str, message: str, who: str | None = None) -> None:
    """Count a refusal and log it once: what was asked, by which address (and token name), and why."""
    metrics.refused(reason)
    by = f" (token {who!r})" if who else ""
    log.warning("refused %s from %s%s: %d %s: %s", what, client, by, status, reason, message)


async def read_body(receive, headers: dict[str, str], max_bytes: int, timeout: float) -> bytes:
    """The whole request body, within ``max_bytes`` and ``timeout`` seconds, or :class:`Refused`."""
    declared = headers.get("content-length")
    # The HTTP parser has refused a Content-Length that is not a number.
    if declared is not None and declared.isdigit():
        if int(declared) > max_bytes:
            raise Refused(413, "body_too_large", f"a body of {int(declared):,} bytes; at most {max_bytes:,} are taken",
                          {"connection": "close"})
    parts, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise Refused(400, "body_timeout", "the client went away before sending its whole body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_bytes:
                    raise Refused(413, "body_too_large", f"a body over {max_bytes:,} bytes; at most {max_bytes:,} are taken",
                                  {"connection": "close"})
                parts.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(parts)
    except TimeoutError:
        raise Refused(408, "body_timeout", f"the body did not arrive within {timeout:g} s", {"connection": "close"}) from None


_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
         b"retry-after: 1\r\ncontent-length: %d\r\n\r\n%s")


def guarded_protocol(base: type, limits, metrics) -> type:
    """A subclass of a uvicorn HTTP protocol class that enforces the header timeout and connection limit."""

    class Guarded(base):
        def connection_made(self, transport):
            super().connection_made(transport)
            client = "%s:%d" % self.client[:2] if self.client else "unknown"
            if len(self.connections) > limits.max_connections:
                body = (b'{"error": {"status": 503, "kind": "too_many_connections", '
                        b'"message": "too many open connections; try again shortly"}}')
                transport.write(_BUSY % (len(body), body))
                transport.close()
                log_refusal(metrics, "too_many_connections", 503, client, "a connection",
                            f"{len(self.connections) - 1} connections open, at most {limits.max_connections}")
                return
            self._arm_header_deadline()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_deadline()

        def _arm_header_deadline(self):
            armed = self.cycle
            self.loop.call_later(limits.header_timeout, self._header_deadline, armed)

        def _header_deadline(self, armed):
            # A new request since arming means the head arrived in time.
            if self.cycle is not armed or self.transport.is_closing():
                return
            client = "%s:%d" % self.client[:2] if self.client else "unknown"
            if armed is not None and not armed.response_complete:
                return
            self.transport.close()
            # An idle kept-alive connection is closed by the idle timeout long
            # before; one that gets here has sent part of a head or nothing.
            log_refusal(metrics, "header_timeout", 408, client, "a connection",
                        f"no complete request head within {limits.header_timeout:g} s")

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded
