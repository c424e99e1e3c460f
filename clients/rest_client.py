"""REST clients for TF Serving on httpx: :class:`RestClient` (sync) and :class:`AsyncRestClient`.

Same surface as the gRPC clients for ``predict``, ``metadata`` and ``status``. Each call is
written once as a generator that yields :class:`HttpCall`s and receives their answers
(predict first asks for the signature once per model/version/signature, because REST
answers carry no dtypes and unnamed single outputs); the sync and async clients differ only
in the driver that sends the calls.

Every finished public call, failed or not, is reported once to the client's ``call_hooks``
(:mod:`tfsuite.clients.hooks`), with the bytes of every HTTP exchange it made.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import grpc
import httpx
import orjson

import tfsuite.protos  # noqa: F401

# isort: split
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tfsuite.clients.errors import ServingClientError, from_http_error, unreachable
from tfsuite.clients.hooks import CallEvent, CallHook, fire
from tfsuite.clients.lifecycle import AsyncClosing, Closing
from tfsuite.clients.rest_json import Format, decode_predict_body, encode_predict_body
from tfsuite.clients.rpcs import check_model_ref
from tfsuite.clients.specs import (
    ModelMetadata,
    SignatureSpec,
    parse_signature_map,
    parse_status,
)

__all__ = ["AsyncRestClient", "HttpCall", "RestClient"]


@dataclass(frozen=True)
class HttpCall:
    """One HTTP exchange: GET when ``body`` is None, else POST with a JSON body."""

    path: str
    body: bytes | None = None


Flow = Generator[HttpCall, bytes, Any]


@dataclass(frozen=True)
class _Ref:
    """What a public call asked for (reported to the call hook)."""

    method: str
    model: str
    version: int | None
    label: str | None


@dataclass
class _Traffic:
    """Bytes moved by one public call's HTTP exchanges."""

    sent: int = 0
    received: int = 0


def _model_path(model: str, version: int | None, label: str | None) -> str:
    check_model_ref(model, version, label)
    # Names go into a URL path: quote them so a name never becomes another path.
    path = f"/v1/models/{quote(model, safe='')}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label:
        path += f"/labels/{quote(label, safe='')}"
    return path


@dataclass(eq=False)  # a client is a connection: identity, not field equality
class _RestAPI:
    """The public methods, once; subclasses drive the flows over sync or async httpx."""

    address: str
    """HOST:PORT of TF Serving's REST port (or a full http(s):// base URL)."""
    model: str | None = None
    timeout: float | None = 30.0
    format: Format = "columnar"
    """Predict body format: 'columnar' ({"inputs": ...}) or 'row' ({"instances": [...]})."""
    headers: Mapping[str, str] = field(default_factory=dict)
    call_hooks: list[CallHook] = field(default_factory=list)
    """Listeners told about every finished call (:class:`~tfsuite.clients.hooks.CallEvent`)."""
    _signatures: dict[tuple[str, int | None, str | None, str], SignatureSpec] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def base_url(self) -> str:
        return self.address if "://" in self.address else f"http://{self.address}"

    def _model(self, model: str | None) -> str:
        return model or self.model or ""

    # -- flows (protocol logic, no I/O) ---------------------------------------------------
    def _metadata_flow(self, model: str, version: int | None, label: str | None) -> Flow:
        raw = yield HttpCall(_model_path(model, version, label) + "/metadata")
        body = orjson.loads(raw)
        spec = get_model_metadata_pb2.GetModelMetadataResponse()
        json_format.ParseDict(
            {"model_spec": body.get("model_spec", {})}, spec, ignore_unknown_fields=True
        )
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        json_format.ParseDict(
            body.get("metadata", {}).get("signature_def", {}), sig_map, ignore_unknown_fields=True
        )
        ms = spec.model_spec
        version_used = ms.version.value if ms.HasField("version") else None
        return parse_signature_map(ms.name or model, version_used, sig_map)

    def _status_flow(self, model: str, version: int | None, label: str | None) -> Flow:
        raw = yield HttpCall(_model_path(model, version, label))
        resp = get_model_status_pb2.GetModelStatusResponse()
        json_format.Parse(raw, resp, ignore_unknown_fields=True)
        return parse_status(resp)

    def _predict_flow(
        self,
        inputs: Mapping[str, Any],
        model: str,
        version: int | None,
        label: str | None,
        signature: str | None,
        output_filter: Iterable[str] | None,
        fmt: Format,
    ) -> Flow:
        sig_name = signature or "serving_default"
        key = (model, version, label, sig_name)
        spec = self._signatures.get(key)
        if spec is None:
            meta: ModelMetadata = yield from self._metadata_flow(model, version, label)
            try:
                spec = meta.signature(sig_name)
            except KeyError:
                raise ServingClientError(
                    f'Serving signature key "{sig_name}" not found.',
                    code=grpc.StatusCode.FAILED_PRECONDITION,
                    address=self.address,
                ) from None
            self._signatures[key] = spec
        body = encode_predict_body(inputs, signature, fmt)
        raw = yield HttpCall(_model_path(model, version, label) + ":predict", body)
        out = decode_predict_body(raw, spec)
        if output_filter is not None:
            wanted = list(output_filter)
            out = {a: out[a] for a in wanted if a in out}
        return out

    # -- public surface ---------------------------------------------------------------------
    def _drive(self, flow: Flow, timeout: float | None, ref: _Ref) -> Any:
        raise NotImplementedError

    def _report(
        self, ref: _Ref, started: float, traffic: _Traffic, error: BaseException | None
    ) -> None:
        if not self.call_hooks:
            return
        seconds = time.perf_counter() - started
        event = CallEvent(
            "rest",
            ref.method,
            ref.model,
            ref.version,
            ref.label,
            started,
            seconds,
            traffic.sent,
            traffic.received,
            error,
        )
        fire(self.call_hooks, event)

    def predict(
        self,
        inputs: Mapping[str, Any],
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str | None = None,
        output_filter: Iterable[str] | None = None,
        timeout: float | None = None,
        format: Format | None = None,
    ) -> Any:
        """POST :predict: ``{alias: array}`` in, ``{alias: ndarray}`` out (dtypes from metadata)."""
        name = self._model(model)
        flow = self._predict_flow(
            inputs, name, version, label, signature, output_filter, format or self.format
        )
        return self._drive(flow, timeout, _Ref("Predict", name, version, label))

    def metadata(
        self,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """GET .../metadata -> :class:`~tfsuite.clients.specs.ModelMetadata`."""
        name = self._model(model)
        ref = _Ref("GetModelMetadata", name, version, label)
        return self._drive(self._metadata_flow(name, version, label), timeout, ref)

    def status(
        self,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """GET /v1/models/NAME[...] -> list of :class:`~tfsuite.clients.specs.VersionStatus`."""
        name = self._model(model)
        ref = _Ref("GetModelStatus", name, version, label)
        return self._drive(self._status_flow(name, version, label), timeout, ref)

    # -- shared answer handling -----------------------------------------------------------
    def _answer(self, resp: httpx.Response) -> bytes:
        if resp.status_code >= 400:
            try:
                message = orjson.loads(resp.content).get("error", resp.text)
            except (orjson.JSONDecodeError, AttributeError):
                message = resp.text or resp.reason_phrase
            raise from_http_error(resp.status_code, str(message), self.address)
        return resp.content

    def _transport_error(self, exc: httpx.HTTPError) -> ServingClientError:
        if isinstance(exc, httpx.TimeoutException):
            return ServingClientError(
                str(exc) or "timed out",
                code=grpc.StatusCode.DEADLINE_EXCEEDED,
                address=self.address,
                summary=(
                    f"DEADLINE_EXCEEDED: no answer from {self.address} (REST) in time; "
                    "raise the timeout"
                ),
            )
        return unreachable(self.address, "REST", str(exc) or type(exc).__name__)

    def _request_args(self, call: HttpCall, timeout: float | None) -> dict[str, Any]:
        args: dict[str, Any] = {
            "method": "GET" if call.body is None else "POST",
            "url": call.path,
            "timeout": self.timeout if timeout is None else timeout,
        }
        if call.body is not None:
            args["content"] = call.body
            args["headers"] = {"content-type": "application/json"}
        return args


def _limits() -> httpx.Limits:
    # Load generators keep many requests in flight; httpx's default pool caps it at 100.
    return httpx.Limits(max_connections=256, max_keepalive_connections=256)


@dataclass(eq=False)
class RestClient(_RestAPI, Closing):
    """Blocking REST client (httpx.Client, keep-alive connection pool)."""

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            base_url=self.base_url, headers=dict(self.headers), limits=_limits()
        )

    def _drive(self, flow: Flow, timeout: float | None, ref: _Ref) -> Any:
        traffic = _Traffic()
        started = time.perf_counter()
        try:
            call = next(flow)
            while True:
                traffic.sent += len(call.body or b"")
                try:
                    resp = self._http.request(**self._request_args(call, timeout))
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from None
                traffic.received += len(resp.content)
                call = flow.send(self._answer(resp))
        except StopIteration as done:
            self._report(ref, started, traffic, None)
            return done.value
        except ServingClientError as exc:
            self._report(ref, started, traffic, exc)
            raise

    def close(self) -> None:
        self._http.close()


@dataclass(eq=False)
class AsyncRestClient(_RestAPI, AsyncClosing):
    """asyncio REST client (httpx.AsyncClient); every method returns an awaitable."""

    def __post_init__(self) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=dict(self.headers), limits=_limits()
        )

    async def _drive(self, flow: Flow, timeout: float | None, ref: _Ref) -> Any:
        traffic = _Traffic()
        started = time.perf_counter()
        try:
            call = next(flow)
            while True:
                traffic.sent += len(call.body or b"")
                try:
                    resp = await self._http.request(**self._request_args(call, timeout))
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc) from None
                traffic.received += len(resp.content)
                call = flow.send(self._answer(resp))
        except StopIteration as done:
            self._report(ref, started, traffic, None)
            return done.value
        except ServingClientError as exc:
            self._report(ref, started, traffic, exc)
            raise

    async def close(self) -> None:
        await self._http.aclose()
