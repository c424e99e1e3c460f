"""Errors of the embedded server: one type carrying a gRPC status code and TF Serving's text.

The core (model manager, batcher, signature runner) raises ``ServingError``; the protocol
adapters translate it once: gRPC aborts with ``code`` and ``message``; REST answers
``{"error": message}`` with ``http_status(code)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from tfsuite.errors import TFSuiteError

__all__ = ["MAX_ERROR_MESSAGE", "ServingError", "http_status"]

#: Long runtime errors (whole graph dumps) are cut to this many characters.
MAX_ERROR_MESSAGE = 4096
_TRUNCATED = " ... [truncated]"

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
            # e.g. a huge alias or JSON snippet echoed back: keep the start, say it was cut.
            message = message[: MAX_ERROR_MESSAGE - len(_TRUNCATED)] + _TRUNCATED
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
        return cls(
            grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}"
        )

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

    # -- signatures and inputs (TF Serving's predict_util / classifier / regressor wording) ---
    @classmethod
    def signature_not_found(cls, key: str) -> ServingError:
        return cls(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.')

    @classmethod
    def input_alias_not_found(cls, alias: str, expected: Iterable[str]) -> ServingError:
        return cls.invalid_argument(
            f"input tensor alias not found in signature: {alias}. "
            f"Inputs expected to be in the set {_braced(sorted(expected))}."
        )

    @classmethod
    def input_size_mismatch(cls, sent: Iterable[str], expected: Iterable[str]) -> ServingError:
        sent_s, exp_s = sorted(set(sent)), sorted(set(expected))
        extra = sorted(set(sent_s) - set(exp_s))
        missing = sorted(set(exp_s) - set(sent_s))
        return cls.invalid_argument(
            f"input size does not match signature: {len(sent_s)}!={len(exp_s)} "
            f"len({_braced(sent_s)}) != len({_braced(exp_s)}). "
            f"Sent extra: {_braced(extra)}. Missing but required: {_braced(missing)}."
        )

    @classmethod
    def output_alias_not_found(cls, alias: str, expected: Iterable[str]) -> ServingError:
        return cls.invalid_argument(
            f"output tensor alias not found in signature: {alias} "
            f"Outputs expected to be in the set {_braced(sorted(expected))}."
        )

    @classmethod
    def dtype_mismatch(cls, index: int, expected: str, given: str) -> ServingError:
        return cls.invalid_argument(
            f"Expects arg[{index}] to be {expected} but {given} is provided"
        )

    @classmethod
    def task_too_large(cls, size: int, limit: int) -> ServingError:
        return cls.invalid_argument(
            f"Task size {size} is larger than maximum input batch size {limit}"
        )

    @classmethod
    def queue_full(cls) -> ServingError:
        return cls.unavailable(
            "The batch scheduling queue to which this task was submitted is full"
        )

    @classmethod
    def padding_off(cls, alias: str) -> ServingError:
        return cls.failed_precondition(
            f"Tensors with name '{alias}' from different tasks have different shapes and "
            "padding is turned off. Set pad_variable_length_inputs to true, or ensure that "
            "all tensors with the same name have equal dimensions starting with the first dim."
        )

    # -- model status -----------------------------------------------------------------------
    @classmethod
    def model_not_found(cls, name: str) -> ServingError:
        return cls(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}")

    @classmethod
    def version_not_found(cls, name: str, version: int) -> ServingError:
        return cls(grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}")


def _braced(names: Iterable[str]) -> str:
    """TF Serving's set notation in messages: ``{a,b,c}``."""
    return "{" + ",".join(names) + "}"
