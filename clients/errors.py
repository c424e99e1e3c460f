"""Errors of the clients: one type for every failed call, carrying the gRPC status code.

    ServingClientError(TFSuiteError)   a call failed: ``code`` (grpc.StatusCode), ``message``
    │                                  (TF Serving's own text), ``address``
    ├── ServerUnreachableError         nothing answers at the address (UNAVAILABLE, connect)
    └── MessageTooLargeError           a message hit a size limit (RESOURCE_EXHAUSTED)

REST failures map onto the same codes (TF Serving's HTTP status table read backwards), so
callers catch one type whichever protocol they use. ``str(err)`` is one line.
"""

from __future__ import annotations

import grpc

from tfsuite.errors import TFSuiteError

__all__ = [
    "MessageTooLargeError",
    "ServerUnreachableError",
    "ServingClientError",
    "from_http_error",
    "from_rpc_error",
    "unreachable",
]

# TF Serving's REST status mapping, inverted (400 is ambiguous; INVALID_ARGUMENT is the usual).
_CODE_FOR_HTTP: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ALREADY_EXISTS,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


class ServingClientError(TFSuiteError):
    """A call to TF Serving failed. ``code`` is the gRPC status; ``message`` the server's text."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        address: str = "",
        summary: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.address = address
        # One line: the code and TF Serving's message (multi-line runtime errors are folded).
        line = summary if summary is not None else f"{code.name}: {message}"
        super().__init__(" ".join(line.split()))

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}({self.code.name}, {self.message!r}, address={self.address!r})"


class ServerUnreachableError(ServingClientError):
    """Nothing answered at the address (server down, wrong host/port, TLS mismatch)."""


class MessageTooLargeError(ServingClientError):
    """A request or response exceeded a gRPC message size limit."""


def unreachable(address: str, protocol: str, reason: str) -> ServerUnreachableError:
    what = "--server HOST:PORT" + (" (the REST port with --rest)" if protocol == "REST" else "")
    return ServerUnreachableError(
        reason,
        code=grpc.StatusCode.UNAVAILABLE,
        address=address,
        summary=(
            f"cannot reach TF Serving at {address} ({protocol}): {_first_line(reason)}; "
            f"check that the server is running and listening there ({what})"
        ),
    )


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else "no answer"


def _looks_unreachable(details: str) -> bool:
    lowered = details.lower()
    return any(
        marker in lowered
        for marker in (
            "failed to connect",
            "connection refused",
            "dns resolution failed",
            "name resolution",
            "connect failed",
            "ssl_error",
            "handshake failed",
            "socket closed",
        )
    )


def from_rpc_error(err: grpc.RpcError, address: str) -> ServingClientError:
    """Translate a ``grpc.RpcError`` (sync or aio) into the client's exception."""
    # grpc.RpcError itself declares neither; the raised Call / AioRpcError objects have both.
    get_code = getattr(err, "code", None)
    get_details = getattr(err, "details", None)
    code: grpc.StatusCode = get_code() if callable(get_code) else grpc.StatusCode.UNKNOWN
    details: str = (get_details() if callable(get_details) else str(err)) or ""
    if code == grpc.StatusCode.UNAVAILABLE and _looks_unreachable(details):
        return unreachable(address, "gRPC", details)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
        side = "send" if "sent message" in details.lower() else "receive"
        return MessageTooLargeError(
            details,
            code=code,
            address=address,
            summary=(
                f"RESOURCE_EXHAUSTED: {details} — raise the client's max_message_bytes "
                f"(gRPC max_{side}_message_length; CLI: --max-message-mb) or the server's "
                f"--grpc_channel_arguments=grpc.max_receive_message_length=N"
            ),
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServingClientError(
            details,
            code=code,
            address=address,
            summary=(
                f"DEADLINE_EXCEEDED: no answer from {address} in time ({details}); "
                "raise the timeout"
            ),
        )
    return ServingClientError(details, code=code, address=address)


def from_http_error(status: int, message: str, address: str) -> ServingClientError:
    """Translate a REST error answer ``{"error": message}`` with HTTP ``status``."""
    fallback = grpc.StatusCode.UNKNOWN if status < 500 else grpc.StatusCode.INTERNAL
    code = _CODE_FOR_HTTP.get(status, fallback)
    if status == 413:
        return MessageTooLargeError(
            message,
            code=code,
            address=address,
            summary=f"HTTP 413: {message} — the server's body size limit is below this batch",
        )
    return ServingClientError(message, code=code, address=address)
