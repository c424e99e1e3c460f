"""A request-header read timeout for the REST server (uvicorn's h11 protocol has none).

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits for the
headers of a request as long as a client cares to dribble them, so a few hundred slow
clients hold the server's connections forever. ``header_timeout_protocol(seconds)`` is
uvicorn's h11 protocol with one more timer: it runs from a connection's first byte (or from
the first byte of the next request on a keep-alive connection) until the request line and
headers are complete. When it fires the client gets ``408 Request Timeout`` and the
connection is closed. The body has its own deadline in ``tfsuite.server.rest``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["header_timeout_protocol"]

logger = logging.getLogger(__name__)

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


class _HeaderTimeoutH11Protocol(H11Protocol):
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()  # a client that connects and sends nothing is slow too

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # part of a request line or headers so far
        else:
            self._disarm_header_timer()  # headers complete: the body has its own deadline

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle again: uvicorn's keep-alive timer runs until the next request's first byte.
        self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self.header_timeout > 0:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
        logger.warning(
            "REST %s: request headers not received within %g s; connection closed",
            client,
            self.header_timeout,
        )
        body = (
            b'{"error": "Request headers not received within %g s (--rest_header_timeout_seconds)"}'
            % (self.header_timeout)
        )
        self.transport.write(_TIMEOUT_RESPONSE % (len(body), body))
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol closing connections whose headers take over ``seconds``
    (0: no limit, uvicorn's own behaviour)."""
    return type(
        "HeaderTimeoutH11Protocol", (_HeaderTimeoutH11Protocol,), {"header_timeout": seconds}
    )
