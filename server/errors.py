"""Errors of the embedded server: one type carrying a gRPC status code and TF Serving's text.

The core (model manager, batcher, signature runner) raises ``ServingError``; the protocol
adapters translate it once: gRPC aborts with ``code`` and ``message``; REST answers
``{"error": message}`` with ``http_status(code)``.
"""

from __future__ import annotations

import grpc

from tfsuite.errors import TFSuiteError

__all__ = ["ServingError", "http_status", "MAX_ERROR_MESSAGE"]

#: Long runtime errors (whole graph dumps) are cut to this many characters.
MAX_ERROR_MESSAGE = 4096

# TF Serving's REST status mapping (http_rest_api_handler / net_http ToHTTPStatusCode).
_HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def http_status(code: grpc.StatusCode) -> int:
    return _HTTP_STATUS.get(code, 500)


class ServingError(TFSuiteError):
    """A request (or load) failed with a TF Serving status code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        if len(message) > MAX_ERROR_MESSAGE:
            message = message[: MAX_ERROR_MESSAGE - 15] + " ... [truncated]"
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return http_status(self.code)

    def __repr__(self) -> str:
        return f"ServingError({self.code.name}, {self.message!r})"

    # -- TF Serving's messages (keep the exact wording) ------------------------------------
    @classmethod
    def servable_not_found(cls, name: str, version: int | None = None) -> ServingError:
        what = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        return cls(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {what}")

    @classmethod
    def unknown_label(cls, label: str) -> ServingError:
        return cls(grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}")

    @classmethod
    def no_model_name(cls) -> ServingError:
        return cls(grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")

    @classmethod
    def invalid_argument(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message)

    @classmethod
    def failed_precondition(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.FAILED_PRECONDITION, message)

    @classmethod
    def unavailable(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.UNAVAILABLE, message)
