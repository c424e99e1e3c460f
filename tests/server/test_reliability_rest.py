"""Reliability of the REST front end (issue 10, cases 7 and 9).

Hostile URLs answer TF Serving's 400s and leave the keep-alive connection usable; routing is
case-insensitive like TF Serving's; a client that drops its body costs one log line; slow
clients are cut off by the header and body read timeouts. A real uvicorn server on an
ephemeral port, raw sockets where a real client would not misbehave.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from http.client import HTTPConnection
from pathlib import Path

import httpx
import pytest
from log_records import LogRecords  # type: ignore[import-not-found]

from tfsuite.server.app import ModelServer
from tfsuite.server.errors import MAX_ERROR_MESSAGE
from tfsuite.server.options import ServerOptions

#: Short read timeouts so the slow-client tests finish quickly; the defaults are 10 s / 60 s.
HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
#: How long a test waits for the server to cut a slow client off (a bound, not a sleep).
CUTOFF_WAIT = 30.0


@pytest.fixture(scope="module")
def server(half_plus_two_base: Path) -> Iterator[ModelServer]:
    options = ServerOptions(
        port=-1,
        rest_api_port=-1,
        model_name="m",
        model_base_path=str(half_plus_two_base),
        file_system_poll_wait_seconds=0,
        rest_header_timeout_seconds=HEADER_TIMEOUT,
        rest_body_timeout_seconds=BODY_TIMEOUT,
    )
    with ModelServer(options) as srv:
        yield srv


@pytest.fixture
def http(server: ModelServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{server.rest_port}", timeout=30) as client:
        yield client


def _assert_serves(http: httpx.Client) -> None:
    r = http.post("/v1/models/m:predict", json={"instances": [1.0, 2.0]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [2.5, 3.0]}


# -- case 7: versions, routing, keep-alive ----------------------------------------------------------

HUGE = "9" * 4301  # more digits than Python's int() accepts from a string


@pytest.mark.parametrize(
    "version",
    [HUGE, "99999999999999999999", "9223372036854775808"],
    ids=["4301-digits", "20-digits", "int64-max-plus-1"],
)
@pytest.mark.parametrize("suffix", [":predict", "", "/metadata"])
def test_version_beyond_int64_is_400_failed_to_convert_version(
    http: httpx.Client, version: str, suffix: str
) -> None:
    method = "POST" if suffix == ":predict" else "GET"
    body = b'{"instances": [1.0]}' if method == "POST" else None
    r = http.request(method, f"/v1/models/m/versions/{version}{suffix}", content=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    message = f"Failed to convert version: {version} to numeric."
    if len(message) > MAX_ERROR_MESSAGE:  # echoed versions are cut like any long message
        message = message[: MAX_ERROR_MESSAGE - 16] + " ... [truncated]"
    assert r.json() == {"error": message}
    _assert_serves(http)


def test_negative_version_is_400_malformed_request_as_tf_servings_digits_only_regex(
    http: httpx.Client,
) -> None:
    r = http.post("/v1/models/m/versions/-1:predict", json={"instances": [1.0]})
    assert r.status_code == 400
    assert r.json() == {"error": "Malformed request: POST /v1/models/m/versions/-1:predict"}


def test_int64_max_and_leading_zeros_are_versions(http: httpx.Client) -> None:
    r = http.get("/v1/models/m/versions/9223372036854775807")
    assert r.status_code == 404
    assert r.json()["error"] == "Could not find version 9223372036854775807 of model m"
    r = http.post("/v1/models/m/versions/0001:predict", json={"instances": [1.0]})
    assert r.json() == {"predictions": [2.5]}


def test_bad_version_keeps_the_keep_alive_connection(server: ModelServer) -> None:
    conn = HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        conn.request("POST", f"/v1/models/m/versions/{HUGE}:predict", body=b"{}")
        first = conn.getresponse()
        assert first.status == 400
        assert json.loads(first.read())["error"].startswith("Failed to convert version")
        assert not first.will_close
        sock = conn.sock
        conn.request("POST", "/v1/models/m:predict", body=b'{"instances": [5.0]}')
        second = conn.getresponse()
        assert json.loads(second.read()) == {"predictions": [4.5]}
        assert conn.sock is sock  # the same TCP connection answered both
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("POST", "/V1/MODELS/m:predict", 200, {"predictions": [2.5]}),
        ("POST", "/v1/Models/m/Versions/1:predict", 200, {"predictions": [2.5]}),
        ("GET", "/V1/MODELS/m/VERSIONS/1", 200, None),
        # TF Serving's regex matches ":PREDICT" case-insensitively, but its dispatch compares
        # the verb case-sensitively (http_rest_api_handler.cc): a malformed request.
        (
            "POST",
            "/v1/models/m:PREDICT",
            400,
            {"error": "Malformed request: POST /v1/models/m:PREDICT"},
        ),
    ],
)
def test_routing_is_case_insensitive_like_tf_serving(
    http: httpx.Client, method: str, path: str, status: int, expected: object
) -> None:
    body = b'{"instances": [1.0]}' if method == "POST" else None
    r = http.request(method, path, content=body)
    assert r.status_code == status, r.text
    if expected is not None:
        assert r.json() == expected
    else:
        assert r.json()["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.fixture
def server_log(capture_log: Callable[[str, int, float], LogRecords]) -> LogRecords:
    return capture_log("", logging.INFO, CUTOFF_WAIT)


def test_dropped_body_logs_one_line_and_the_server_serves_on(
    server: ModelServer, http: httpx.Client, server_log: LogRecords
) -> None:
    with socket.create_connection(("127.0.0.1", server.rest_port), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/models/m:predict HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        # "100 Continue" comes when the handler starts reading the body: drop it then.
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b'{"instances": [')
    records = server_log.wait_for("closed the connection")
    assert len(records) == 1, [r.getMessage() for r in server_log.records]
    assert "\n" not in records[0].getMessage()
    assert not [r for r in server_log.records if r.exc_info], "a traceback was logged"
    _assert_serves(http)


# -- case 9: slow clients ------------------------------------------------------------------------------


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the timeout)."""
    sock.settimeout(CUTOFF_WAIT)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_slow_header_clients_are_cut_off_with_408(server: ModelServer, http: httpx.Client) -> None:
    clients = [socket.create_connection(("127.0.0.1", server.rest_port)) for _ in range(20)]
    try:
        for i, sock in enumerate(clients):
            if i % 2:
                sock.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nHost: t\r\n")  # never ends
            # the others connect and send nothing at all
        for sock in clients:
            answer = _read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
            assert b"--rest_header_timeout_seconds" in answer
        _assert_serves(http)
    finally:
        for sock in clients:
            sock.close()


def test_body_shorter_than_content_length_is_cut_off_with_408(
    server: ModelServer, http: httpx.Client
) -> None:
    clients = [socket.create_connection(("127.0.0.1", server.rest_port)) for _ in range(10)]
    try:
        for sock in clients:
            sock.sendall(
                b"POST /v1/models/m:predict HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
                b'{"instances": '
            )
        for sock in clients:
            answer = _read_until_closed(sock)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), head
            assert b"connection: close" in head.lower()
            assert "--rest_body_timeout_seconds" in json.loads(body)["error"]
        _assert_serves(http)
    finally:
        for sock in clients:
            sock.close()


def test_keep_alive_client_between_requests_is_not_cut_off_by_the_header_timer(
    server: ModelServer,
) -> None:
    conn = HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        for x in (1.0, 2.0):
            conn.request("POST", "/v1/models/m:predict", body=json.dumps({"instances": [x]}))
            response = conn.getresponse()
            assert json.loads(response.read()) == {"predictions": [0.5 * x + 2]}
    finally:
        conn.close()
