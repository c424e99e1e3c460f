"""REST adapter: TF Serving's HTTP/JSON API (Starlette on uvicorn) over the protocol-free core.

Routes (``g3doc/api_rest.md``; matched case-insensitively, as TF Serving matches them)::

    POST /v1/models/NAME[/versions/N | /labels/L]:predict | :classify | :regress
    GET  /v1/models/NAME[/versions/N | /labels/L]            (status)
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata
    GET  <prometheus path>                                    (when monitoring is enabled)

JSON is typed by the signature's input dtypes and handed to the core's numpy-level
``DataPlane`` (the same path the gRPC adapter reaches through ``ServerCore``'s protos),
so large JSON inputs are never re-encoded as TensorProtos. Predict bodies whose inputs are
dense numeric arrays are decoded by ``rest_dense`` straight into numpy arrays (memory: the
body, the tensors and ~4 x 64 KB); others by ``rest_json`` through orjson's Python objects
(up to ~16x the body for short numbers; ``max_request_bytes`` bounds the body). The work of a request (JSON
decode, inference, JSON encode) runs in one hop on a pool of ``--rest_api_num_threads``
threads, bounded by ``--rest_api_timeout_in_ms``: on time out the client gets 504
``Deadline Exceeded`` at once, but the inference is not cancelled (a TensorFlow call cannot
be interrupted) -- it runs to the end on its pool thread, which stays busy, and its result
is dropped. Errors are ``{"error": message}`` with
the HTTP status of ``tfsuite.server.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tfsuite.clients.codec import CodecError
from tfsuite.server.dataplane import RequestSpec
from tfsuite.server.errors import ServingError
from tfsuite.server.observers import RequestObserver
from tfsuite.server.options import ServerOptions, handler_thread_count
from tfsuite.server.rest_dense import scan_predict_body
from tfsuite.server.rest_json import (
    dumps,
    examples_from_json,
    parse_json,
    parse_predict_body,
    predict_response,
)
from tfsuite.server.servable import DEFAULT_SIGNATURE, InputSpec
from tfsuite.serving_configs.model_config import parse_version_dir

__all__ = ["ModelPath", "RestApi", "parse_model_path"]

logger = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_JSON = "application/json"

# NAME[/versions/N | /labels/L][:verb | /metadata]; names never become paths, only dict keys.
# Matched case-insensitively, as TF Serving's http_rest_api_util.cc regexes ("(?i)"); like
# TF Serving, the verb is then compared case-sensitively (":PREDICT" is a malformed request)
# and an upper-case "/METADATA" is a status request. Versions are digits only: "-1" does not
# match at all (malformed request).
_MODEL_PATH = re.compile(
    r"(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>predict|classify|regress)|/(?P<metadata>metadata))?",
    re.IGNORECASE,
)
_MODELS_PREFIX = re.compile(r"/v1/models/", re.IGNORECASE)
_INT64_DIGITS = len(str(2**63 - 1))


@dataclass(frozen=True)
class ModelPath:
    """The parsed part of a ``/v1/models/...`` URL."""

    name: str
    version: int | None
    label: str | None
    #: "predict" | "classify" | "regress" | "metadata" | "status"
    action: str


def _version_number(digits: str) -> int:
    """``absl::SimpleAtoi`` into int64, as for version dirs: leading zeros are fine, more
    than int64 is not."""
    # Length first: int() refuses strings of more than 4300 digits.
    fits = len(digits.lstrip("0")) <= _INT64_DIGITS
    version = parse_version_dir(digits) if fits else None
    if version is None:
        raise ServingError.invalid_argument(f"Failed to convert version: {digits} to numeric.")
    return version


def parse_model_path(rest: str) -> ModelPath | None:
    """The part after ``/v1/models/``; None when it is not a model URL (malformed request).

    Raises ``ServingError`` INVALID_ARGUMENT (HTTP 400) for a version beyond int64, in TF
    Serving's words.
    """
    m = _MODEL_PATH.fullmatch(rest)
    if m is None:
        return None
    verb = m["verb"]
    if verb is not None and verb not in ("predict", "classify", "regress"):
        return None  # TF Serving dispatches on the verb case-sensitively
    version = m["version"]
    action = verb or ("metadata" if m["metadata"] == "metadata" else "status")
    return ModelPath(
        m["name"], _version_number(version) if version is not None else None, m["label"], action
    )


class _TooLarge(Exception):
    pass


class RestApi:
    """The Starlette app and its worker pool; ``app`` is what uvicorn serves."""

    def __init__(
        self,
        core: Any,
        options: ServerOptions,
        *,
        metrics_path: str | None = None,
        render_metrics: Callable[[], str | bytes] | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        self._core = core
        # JSON is typed by the signature, so REST talks to the numpy-level data plane
        # directly instead of building TensorProtos only to decode them again.
        self._dataplane = core.dataplane
        self._max_body = options.max_request_bytes
        self._timeout = (
            options.rest_api_timeout_in_ms / 1000 if options.rest_api_timeout_in_ms else None
        )
        self._pool = ThreadPoolExecutor(
            max_workers=max(
                1,
                handler_thread_count(options, "rest_api_num_threads", core.batching_options),
            ),
            thread_name_prefix="rest",
        )
        self._observer = observer
        self._render_metrics = render_metrics
        self._body_timeout = options.rest_body_timeout_seconds or None
        routes = []
        if metrics_path and render_metrics is not None:
            routes.append(Route(metrics_path, self._metrics, methods=["GET"]))
        # Everything else: /v1/models/... in any letter case (TF Serving's "(?i)/v1/.*"), or 404.
        routes.append(Route("/{rest:path}", self._route, methods=_ALL_METHODS))
        self.app = Starlette(routes=routes)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- endpoints -------------------------------------------------------------------------------
    async def _not_found(self, request: Request) -> Response:
        return _error(404, f"Not found: {request.method} {request.url.path}")

    async def _metrics(self, request: Request) -> Response:
        assert self._render_metrics is not None
        text = self._render_metrics()
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def _route(self, request: Request) -> Response:
        url_path = request.url.path
        prefix = _MODELS_PREFIX.match(url_path)
        if prefix is None:
            return await self._not_found(request)
        method = request.method
        try:
            path = parse_model_path(url_path[prefix.end() :])
        except ServingError as exc:
            return _error(exc.http_status, exc.message)
        expected = (
            "POST"
            if path is not None and path.action in ("predict", "classify", "regress")
            else "GET"
        )
        if path is None or method != expected:
            return _error(400, f"Malformed request: {method} {url_path}")
        body = b""
        if method == "POST":
            try:
                body = await self._read_body(request)
            except _TooLarge as exc:
                return _error(413, str(exc))
            except asyncio.TimeoutError:
                logger.warning(
                    "REST %s %s: request body not received within %g s; connection closed",
                    method,
                    url_path,
                    self._body_timeout,
                )
                return _error(
                    408,
                    f"Request body not received within {self._body_timeout:g} s "
                    "(--rest_body_timeout_seconds)",
                    close=True,
                )
            except ClientDisconnect:
                logger.warning(
                    "REST %s %s: client closed the connection before sending the whole body",
                    method,
                    url_path,
                )
                return _error(400, "Client closed the connection", close=True)
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            try:
                work = self._pool.submit(self._handle, path, body)
            except RuntimeError:  # the pool is shut down: the server is stopping
                code = grpc.StatusCode.UNAVAILABLE
                return _error(503, "Server is shutting down")
            content = await asyncio.wait_for(asyncio.wrap_future(work), self._timeout)
            return Response(content, media_type=_JSON)
        except ServingError as exc:
            code = exc.code
            return _error(exc.http_status, exc.message)
        except asyncio.TimeoutError:
            code = grpc.StatusCode.DEADLINE_EXCEEDED
            return _error(504, "Deadline Exceeded")
        except Exception as exc:  # a bug or a runtime failure: still TF Serving's error JSON
            logger.exception("REST %s %s failed", method, request.url.path)
            code = grpc.StatusCode.INTERNAL
            return _error(500, f"{type(exc).__name__}: {exc}")
        finally:
            if self._observer is not None:
                self._observer("REST", path.action, path.name, code, time.perf_counter() - start)

    async def _read_body(self, request: Request) -> bytes:
        """The whole body, within ``--max_request_bytes`` and ``--rest_body_timeout_seconds``
        (a client that sends it slower, or declares more than it sends, gets
        ``asyncio.TimeoutError``).
        """
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise _TooLarge(
                f"Request body of {declared} bytes exceeds the limit of {self._max_body} bytes"
            )
        return await asyncio.wait_for(self._collect_body(request), self._body_timeout)

    async def _collect_body(self, request: Request) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise _TooLarge(f"Request body exceeds the limit of {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- work (runs on the pool) -----------------------------------------------------------------
    def _handle(self, path: ModelPath, body: bytes) -> bytes:
        try:
            if path.action == "predict":
                return self._predict(path, body)
            if path.action in ("classify", "regress"):
                return self._classify_regress(path, body)
            if path.action == "metadata":
                return self._metadata(path)
            return self._status(path)
        except CodecError as exc:
            raise ServingError.invalid_argument(str(exc)) from None

    def _spec(self, path: ModelPath, signature_name: str = DEFAULT_SIGNATURE) -> RequestSpec:
        return RequestSpec(path.name, path.version, path.label, signature_name or DEFAULT_SIGNATURE)

    def _predict(self, path: ModelPath, body: bytes) -> bytes:
        dataplane = self._dataplane
        dense = scan_predict_body(body)  # dense numeric inputs: straight into numpy arrays
        if dense is not None:
            spec = self._spec(path, dense.signature_name)
            version, specs = dataplane.input_specs(spec)
            inputs = dense.decode(body, _json_dtypes(specs))
            if inputs is not None:
                return self._run_predict(path, version, spec, inputs, dense.row_format)
        doc = parse_json(body)
        header = parse_predict_body(doc, None)  # validates the document's keys first
        spec = self._spec(path, header.signature_name)
        version, specs = dataplane.input_specs(spec)
        parsed = parse_predict_body(doc, _json_dtypes(specs))
        return self._run_predict(path, version, spec, parsed.inputs, parsed.row_format)

    def _run_predict(
        self,
        path: ModelPath,
        version: int,
        spec: RequestSpec,
        inputs: dict[str, np.ndarray],
        row_format: bool,
    ) -> bytes:
        # Pin the version the signature was read from: a new version may land in between.
        pinned = RequestSpec(path.name, version, None, spec.signature_name)
        _, outputs = self._dataplane.predict(pinned, inputs, entrypoint="REST")
        return predict_response(outputs, row_format)

    def _classify_regress(self, path: ModelPath, body: bytes) -> bytes:
        signature_name, examples = examples_from_json(parse_json(body))
        spec = self._spec(path, signature_name)
        if path.action == "classify":
            _, result = self._dataplane.classify(spec, examples, entrypoint="REST")
            classes, scores = result.classes, result.scores
            rows = [
                [
                    [
                        result.label(i, j) if classes is not None else "",
                        float(scores[i, j]) if scores is not None else 0.0,
                    ]
                    for j in range(result.num_classes)
                ]
                for i in range(result.num_examples)
            ]
            return dumps({"results": rows})
        _, values = self._dataplane.regress(spec, examples, entrypoint="REST")
        return dumps({"results": values.astype(float).tolist()})

    def _status(self, path: ModelPath) -> bytes:
        rows = self._dataplane.get_model_status(path.name, path.version, path.label)
        return dumps(
            {
                "model_version_status": [
                    {
                        "version": str(row.version),
                        "state": row.state,
                        "status": {
                            "error_code": row.error_code.name,
                            "error_message": row.error_message,
                        },
                    }
                    for row in rows
                ]
            }
        )

    def _metadata(self, path: ModelPath) -> bytes:
        version, sigmap = self._dataplane.get_model_metadata(self._spec(path))
        return dumps(
            {
                "model_spec": {"name": path.name, "signature_name": "", "version": str(version)},
                "metadata": {"signature_def": _to_dict(sigmap)},
            }
        )


def _json_dtypes(specs: dict[str, InputSpec]) -> dict[str, np.dtype[Any]]:
    """The numpy dtype JSON values become, per input alias (object for DT_STRING)."""
    dtypes = {}
    for alias, input_spec in specs.items():
        if input_spec.np_dtype is None:
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"Conversion of JSON values to type {input_spec.type_name} (input {alias}) "
                "is not supported",
            )
        dtypes[alias] = input_spec.np_dtype
    return dtypes


def _to_dict(message: Any) -> Any:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _error(status: int, message: str, *, close: bool = False) -> Response:
    """TF Serving's error JSON; ``close`` ends the connection after it (body left unread)."""
    headers = {"connection": "close"} if close else None
    return Response(
        dumps({"error": message}), status_code=status, media_type=_JSON, headers=headers
    )
