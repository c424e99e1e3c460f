"""REST adapter: TF Serving's HTTP/JSON API (Starlette on uvicorn) over the protocol-free core.

Routes (``g3doc/api_rest.md``)::

    POST /v1/models/NAME[/versions/N | /labels/L]:predict | :classify | :regress
    GET  /v1/models/NAME[/versions/N | /labels/L]            (status)
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata
    GET  <prometheus path>                                    (when monitoring is enabled)

The JSON is translated into the same TF Serving protos the gRPC adapter hands to the core,
so both protocols share one code path below the adapters. The work of a request (JSON
decode, inference, JSON encode) runs in one hop on a pool of ``--rest_api_num_threads``
threads, bounded by ``--rest_api_timeout_in_ms``. Errors are ``{"error": message}`` with
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
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import tfsuite.protos  # noqa: F401  (light proto import; must precede the pb2 imports)
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    regression_pb2,
)

from tfsuite.clients.codec import CodecError, dtype_from_proto, make_ndarray, make_tensor_proto
from tfsuite.server.errors import ServingError
from tfsuite.server.options import ServerOptions
from tfsuite.server.rest_json import (
    InputSpec,
    dumps,
    examples_from_json,
    parse_json,
    parse_predict_body,
    predict_response,
)

__all__ = ["RestApi", "ModelPath", "parse_model_path"]

logger = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
_JSON = "application/json"

# NAME[/versions/N | /labels/L][:verb | /metadata]; names never become paths, only dict keys.
_MODEL_PATH = re.compile(
    r"(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>-?\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>predict|classify|regress)|/(?P<metadata>metadata))?"
)

#: Called after each request: (api, model_name, grpc status code, seconds).
RequestObserver = Callable[[str, str, grpc.StatusCode, float], None]


@dataclass(frozen=True)
class ModelPath:
    """The parsed part of a ``/v1/models/...`` URL."""

    name: str
    version: int | None
    label: str | None
    #: "predict" | "classify" | "regress" | "metadata" | "status"
    action: str

    def fill(self, spec: Any, signature_name: str | None = None) -> None:
        spec.name = self.name
        if self.version is not None:
            spec.version.value = self.version
        elif self.label is not None:
            spec.version_label = self.label
        if signature_name is not None:
            spec.signature_name = signature_name


def parse_model_path(rest: str) -> ModelPath | None:
    m = _MODEL_PATH.fullmatch(rest)
    if m is None:
        return None
    version = m["version"]
    action = m["verb"] or ("metadata" if m["metadata"] else "status")
    return ModelPath(m["name"], int(version) if version is not None else None, m["label"], action)


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
        self._max_body = options.max_request_bytes
        self._timeout = options.rest_api_timeout_in_ms / 1000 if options.rest_api_timeout_in_ms else None
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, options.rest_api_num_threads), thread_name_prefix="rest"
        )
        self._observer = observer
        self._render_metrics = render_metrics
        routes = [Route("/v1/models/{rest:path}", self._models, methods=_ALL_METHODS)]
        if metrics_path and render_metrics is not None:
            routes.append(Route(metrics_path, self._metrics, methods=["GET"]))
        routes.append(Route("/{rest:path}", self._not_found, methods=_ALL_METHODS))
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

    async def _models(self, request: Request) -> Response:
        path = parse_model_path(request.path_params["rest"])
        method = request.method
        expected = "POST" if path is not None and path.action in ("predict", "classify", "regress") else "GET"
        if path is None or method != expected:
            return _error(400, f"Malformed request: {method} {request.url.path}")
        body = b""
        if method == "POST":
            try:
                body = await self._read_body(request)
            except _TooLarge as exc:
                return _error(413, str(exc))
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            work = self._pool.submit(self._handle, path, body)
            content = await asyncio.wait_for(asyncio.wrap_future(work), self._timeout)
            return Response(content, media_type=_JSON)
        except ServingError as exc:
            code = exc.code
            return _error(exc.http_status, exc.message)
        except asyncio.TimeoutError:
            code = grpc.StatusCode.DEADLINE_EXCEEDED
            return _error(504, "Deadline Exceeded")
        except RuntimeError as exc:  # pool shut down while stopping
            code = grpc.StatusCode.UNAVAILABLE
            return _error(503, f"Server is shutting down: {exc}")
        finally:
            if self._observer is not None:
                self._observer(path.action, path.name, code, time.perf_counter() - start)

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise _TooLarge(
                f"Request body of {declared} bytes exceeds the limit of {self._max_body} bytes"
            )
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

    def _signature_inputs(self, path: ModelPath, signature_name: str) -> tuple[int, dict[str, InputSpec]]:
        """(version that will serve, {alias: InputSpec}) of the requested signature."""
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        path.fill(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._core.get_model_metadata(request)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigmap)
        if signature_name not in sigmap.signature_def:
            raise ServingError.failed_precondition(
                f'Serving signature key "{signature_name}" not found.'
            )
        inputs = sigmap.signature_def[signature_name].inputs
        specs = {alias: InputSpec(dtype_from_proto(info.dtype)) for alias, info in inputs.items()}
        return response.model_spec.version.value, specs

    def _predict(self, path: ModelPath, body: bytes) -> bytes:
        doc = parse_json(body)
        header = parse_predict_body(doc, None)  # validates the shape of the document first
        version, specs = self._signature_inputs(path, header.signature_name)
        parsed = parse_predict_body(doc, specs)
        request = predict_pb2.PredictRequest()
        # Pin the version the signature was read from: a new version may land in between.
        request.model_spec.name = path.name
        request.model_spec.version.value = version
        request.model_spec.signature_name = parsed.signature_name
        for alias, arr in parsed.inputs.items():
            request.inputs[alias].CopyFrom(make_tensor_proto(arr))
        response = self._core.predict(request)
        outputs = {alias: make_ndarray(t) for alias, t in response.outputs.items()}
        return predict_response(outputs, parsed.row_format)

    def _classify_regress(self, path: ModelPath, body: bytes) -> bytes:
        doc = parse_json(body)
        if path.action == "classify":
            request: Any = classification_pb2.ClassificationRequest()
        else:
            request = regression_pb2.RegressionRequest()
        examples_from_json(doc, request)
        path.fill(request.model_spec)
        if path.action == "classify":
            result = self._core.classify(request).result
            return dumps(
                {
                    "results": [
                        [[c.label, c.score] for c in cls.classes] for cls in result.classifications
                    ]
                }
            )
        result = self._core.regress(request).result
        return dumps({"results": [r.value for r in result.regressions]})

    def _status(self, path: ModelPath) -> bytes:
        request = get_model_status_pb2.GetModelStatusRequest()
        path.fill(request.model_spec)
        response = self._core.get_model_status(request)
        return dumps(_to_dict(response))

    def _metadata(self, path: ModelPath) -> bytes:
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        path.fill(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._core.get_model_metadata(request)
        sigmap = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigmap)
        return dumps(
            {
                "model_spec": _to_dict(response.model_spec),
                "metadata": {"signature_def": _to_dict(sigmap)},
            }
        )


def _to_dict(message: Any) -> Any:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _error(status: int, message: str) -> Response:
    return Response(dumps({"error": message}), status_code=status, media_type=_JSON)

