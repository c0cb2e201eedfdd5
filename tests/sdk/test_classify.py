"""classify() against a real server on loopback, a closed port and an unresolvable host."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errdiscount_sdk import (
    BusinessError,
    ErrorCategory,
    MalformedRequest,
    PermissionDenied,
    Severity,
    build_error,
    classify,
    parse_error_payload,
)
from tests.support.server import serve

RELEASE = threading.Event()


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    headers = {}
    if "retry_after" in request.query_params:
        headers["Retry-After"] = request.query_params["retry_after"]
    return Response(b"", status_code=code, headers=headers)


async def business(request: Request) -> Response:
    return JSONResponse(
        {"error_code": "PAY_001", "message": "Insufficient balance", "suggestion": "Top up"},
        status_code=int(request.query_params.get("status", "400")),
    )


async def malformed(request: Request) -> Response:
    return JSONResponse(
        {"error_code": "INVALID_JSON", "message": "Request body is not valid JSON"},
        status_code=400,
    )


async def coupon(request: Request) -> Response:
    return JSONResponse(
        {"error_code": "COUPON_EXPIRED", "message": "This coupon has expired",
         "suggestion": "Pick another coupon"},
        status_code=400,
    )  # fmt: skip


async def hostile(request: Request) -> Response:
    # ~60 KB: strings full of "]" in front of 3 000 real nesting levels.
    body = '{"error_code": "X", "a": [' + '"]]]]]]]]",' * 5000 + "[" * 3000 + "]" * 3000 + "]}"
    return Response(body, status_code=400, media_type="application/json")


async def slow(request: Request) -> Response:
    # Parks the request until the test releases it; the client's timeout fires first.
    while not RELEASE.is_set():
        await asyncio.sleep(0.02)
    return Response(b"late")


APP = Starlette(
    routes=[
        Route("/status/{code:int}", status, methods=["GET", "POST", "PUT"]),
        Route("/business", business),
        Route("/malformed", malformed, methods=["POST"]),
        Route("/coupon", coupon),
        Route("/hostile", hostile),
        Route("/slow", slow, methods=["GET", "POST"]),
    ]
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    RELEASE.clear()
    with serve(APP) as url:
        yield url
        RELEASE.set()


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5) as http:
        yield http


TABLE = [
    # status, category, severity, transient, error_type
    (400, ErrorCategory.PROTOCOL, Severity.MODERATE, False, "400"),
    (401, ErrorCategory.PROTOCOL, Severity.MODERATE, False, "401"),
    (403, ErrorCategory.PROTOCOL, Severity.MODERATE, False, "403"),
    (404, ErrorCategory.PROTOCOL, Severity.MODERATE, False, "404"),
    (408, ErrorCategory.PROTOCOL, Severity.MINOR, True, "408"),
    (409, ErrorCategory.PROTOCOL, Severity.MINOR, False, "409"),
    (410, ErrorCategory.PROTOCOL, Severity.MODERATE, False, "410"),
    (422, ErrorCategory.PROTOCOL, Severity.MODERATE, False, "422"),
    (429, ErrorCategory.PROTOCOL, Severity.MINOR, True, "429"),
    (500, ErrorCategory.PROTOCOL, Severity.SEVERE, False, "500"),
    (501, ErrorCategory.PROTOCOL, Severity.SEVERE, False, "501"),
    (502, ErrorCategory.PROTOCOL, Severity.SEVERE, True, "502"),
    (503, ErrorCategory.PROTOCOL, Severity.SEVERE, True, "503"),
    (504, ErrorCategory.PROTOCOL, Severity.SEVERE, True, "504"),
]


@pytest.mark.parametrize(("code", "category", "severity", "transient", "error_type"), TABLE)
def test_status_table(
    client: httpx.Client,
    code: int,
    category: ErrorCategory,
    severity: Severity,
    transient: bool,
    error_type: str,
) -> None:
    response = client.get(f"/status/{code}")
    verdict = classify(response)
    assert verdict.category is category
    assert verdict.severity is severity
    assert verdict.transient is transient
    assert verdict.retryable is transient  # GET is idempotent
    assert verdict.error_type == error_type
    assert verdict.status_code == code
    assert verdict.request_sent


def test_transient_post_without_key_is_not_retryable(client: httpx.Client) -> None:
    verdict = classify(client.post("/status/503"))
    assert verdict.transient and not verdict.retryable


def test_transient_post_with_idempotency_key_is_retryable(client: httpx.Client) -> None:
    verdict = classify(client.post("/status/503", headers={"Idempotency-Key": "k1"}))
    assert verdict.retryable


def test_put_is_idempotent(client: httpx.Client) -> None:
    assert classify(client.put("/status/502")).retryable


def test_409_is_transient_only_with_an_idempotency_key(client: httpx.Client) -> None:
    assert not classify(client.post("/status/409")).transient
    keyed = classify(client.post("/status/409", headers={"Idempotency-Key": "k"}))
    assert keyed.transient and keyed.retryable


@pytest.mark.parametrize(("value", "expected"), [("7", 7.0), ("garbage", None), ("-3", None)])
def test_retry_after_is_read(client: httpx.Client, value: str, expected: float | None) -> None:
    verdict = classify(client.get("/status/503", params={"retry_after": value}))
    assert verdict.retry_after == expected


def test_retry_after_from_an_http_date(client: httpx.Client) -> None:
    import email.utils
    import time

    date = email.utils.formatdate(time.time() + 120, usegmt=True)
    verdict = classify(client.get("/status/429", params={"retry_after": date}))
    assert verdict.retry_after is not None and 100 < verdict.retry_after <= 120


@pytest.mark.parametrize("code", [400, 402, 409, 422])
def test_4xx_with_a_business_code_is_business(client: httpx.Client, code: int) -> None:
    response = client.get("/business", params={"status": code})
    payload = parse_error_payload(response.content, content_type=response.headers["content-type"])
    verdict = classify(response, payload=payload)
    assert verdict.category is ErrorCategory.BUSINESS
    assert verdict.severity is Severity.MINOR
    assert not verdict.transient
    error = build_error(response, payload=payload)
    assert isinstance(error, BusinessError)
    assert error.error_code == "PAY_001"
    assert "Top up" in str(error)


def test_403_with_a_code_stays_a_permission_problem(client: httpx.Client) -> None:
    response = client.get("/business", params={"status": 403})
    payload = parse_error_payload(response.content)
    error = build_error(response, payload=payload)
    assert isinstance(error, PermissionDenied)
    assert "permission" in str(error).lower()
    assert "system failure" not in str(error).lower()
    assert error.error_code == "PAY_001"


def test_malformed_request_is_data_format(client: httpx.Client) -> None:
    response = client.post("/malformed", content=b"{not json")
    payload = parse_error_payload(response.content)
    error = build_error(response, payload=payload)
    assert isinstance(error, MalformedRequest)
    assert error.category is ErrorCategory.DATA_FORMAT


def test_invalid_success_body_is_data_format(client: httpx.Client) -> None:
    response = client.get("/status/200")
    verdict = classify(response, invalid_body=True)
    assert verdict.category is ErrorCategory.DATA_FORMAT
    assert verdict.error_type == "invalid_response_body"


def test_read_timeout_may_have_reached_the_server(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(5, read=0.2)) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            http.post("/slow")
        verdict = classify(caught.value)
        assert verdict.category is ErrorCategory.NETWORK
        assert verdict.error_type == "read_timeout"
        assert verdict.transient
        assert verdict.request_sent
        assert not verdict.retryable  # a POST the server may have acted on
        with pytest.raises(httpx.ReadTimeout) as caught_get:
            http.get("/slow")
        assert classify(caught_get.value).retryable


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_never_reached_the_server() -> None:
    with pytest.raises(httpx.ConnectError) as caught:
        httpx.post(f"http://127.0.0.1:{_closed_port()}/x")
    verdict = classify(caught.value)
    assert verdict.category is ErrorCategory.NETWORK
    assert verdict.error_type == "connection_refused"
    assert verdict.transient
    assert not verdict.request_sent
    assert verdict.retryable  # even a POST: nothing was sent
    error = build_error(caught.value)
    assert type(error).__name__ == "ConnectionRefused"
    assert error.request is not None and error.response is None
    assert error.__cause__ is caught.value


async def test_connection_refused_async() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(f"http://127.0.0.1:{_closed_port()}/x")
    assert classify(caught.value).error_type == "connection_refused"


def test_dns_failure() -> None:
    with pytest.raises(httpx.ConnectError) as caught:
        httpx.get("http://errdiscount-does-not-exist.invalid/")
    verdict = classify(caught.value)
    assert verdict.error_type == "dns_failure"
    assert verdict.category is ErrorCategory.NETWORK
    assert not verdict.request_sent
    assert type(build_error(caught.value)).__name__ == "DnsFailure"


@pytest.mark.parametrize(
    ("exc", "error_type", "category"),
    [
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            "connection_lost",
            ErrorCategory.NETWORK,
        ),
        (
            httpx.RemoteProtocolError("illegal header line"),
            "malformed_response",
            ErrorCategory.PROTOCOL,
        ),
        (httpx.ReadError("reset"), "connection_lost", ErrorCategory.NETWORK),
        (httpx.DecodingError("bad gzip"), "malformed_response", ErrorCategory.PROTOCOL),
        (httpx.TooManyRedirects("loop"), "too_many_redirects", ErrorCategory.PROTOCOL),
        (httpx.PoolTimeout("pool"), "pool_timeout", ErrorCategory.NETWORK),
        (httpx.WriteTimeout("write"), "write_timeout", ErrorCategory.NETWORK),
        (ValueError("odd"), "network_error", ErrorCategory.NETWORK),
    ],
)
def test_faults_a_server_cannot_make_on_demand(
    exc: Exception, error_type: str, category: ErrorCategory
) -> None:
    # These carry no request: classify must cope with that too.
    verdict = classify(exc)
    assert verdict.error_type == error_type
    assert verdict.category is category


def test_messages_never_include_the_query_string(client: httpx.Client) -> None:
    response = client.get("/status/403", params={"api_key": "secret-value"})
    error = build_error(response)
    assert "secret-value" not in str(error)
    assert "/status/403" in str(error)


def test_google_retry_info_is_used_without_a_header() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "m",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}],
        }
    }
    request = httpx.Request("GET", "https://api.example.com/x")
    response = httpx.Response(429, json=body, request=request)
    payload = parse_error_payload(response.content)
    assert classify(response, payload=payload).retry_after == 2.0
    assert json.loads(response.content) == body


# -- issue 10: classify(response) reads the body; foreign input is a clear TypeError ------


def test_classify_reads_a_read_body_itself(client: httpx.Client) -> None:
    # The seed's shape on a real 400: business, as the client would say, not "HTTP 400".
    response = client.get("/coupon")
    verdict = classify(response)
    assert verdict.category is ErrorCategory.BUSINESS
    assert verdict.error_type == "business_error"
    error = build_error(response)
    assert isinstance(error, BusinessError)
    assert error.error_code == "COUPON_EXPIRED"
    assert "COUPON_EXPIRED" in str(error)


def test_classify_does_not_read_an_unread_stream(client: httpx.Client) -> None:
    with client.stream("GET", "/coupon") as response:
        assert classify(response).category is ErrorCategory.PROTOCOL
        assert not response.is_stream_consumed


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ((("x",), {}), "not str"),
        (((None,), {}), "not NoneType"),
        (((42,), {}), "not int"),
        (((httpx.Response(400),), {"payload": {"error_code": "X"}}), "payload must be"),
        (((httpx.Response(400),), {"request": "https://x"}), "request must be"),
    ],
)
def test_foreign_input_is_a_clear_type_error(
    arguments: tuple[tuple[object, ...], dict[str, object]], fragment: str
) -> None:
    args, kwargs = arguments
    functions: list[Any] = [classify, build_error]  # called with wrong types on purpose
    for function in functions:
        with pytest.raises(TypeError, match=fragment):
            function(*args, **kwargs)


def test_a_hostile_body_reaches_the_caller_as_a_classified_error(base_url: str) -> None:
    # Used to escape Client.get as RecursionError, skipping classification and hooks.
    from errdiscount_sdk import ApiError, Client

    seen: list[ApiError] = []
    with Client(base_url=base_url, on_error=seen.append) as api, pytest.raises(ApiError) as caught:
        api.get("/hostile")
    assert caught.value.status_code == 400
    assert caught.value.payload is None
    assert seen == [caught.value]
