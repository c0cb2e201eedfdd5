"""Transport glue: mock transports only for faults a real server cannot make on demand."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from errdiscount_sdk import (
    AsyncClient,
    Client,
    ConfigurationError,
    ConnectionLost,
    DnsFailure,
    InvalidResponseBody,
    RetryStop,
    ServiceUnavailable,
)
from errdiscount_sdk._http.transport import (
    Call,
    build_request,
    check_response,
    make_sync_client,
    send,
)
from errdiscount_sdk.testing import disable_backoff


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    with disable_backoff():
        yield


class Counting:
    """A MockTransport handler that counts attempts and delegates to ``respond``."""

    def __init__(self, respond: object) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)  # type: ignore[operator, no-any-return]


def dns_failure(request: httpx.Request) -> httpx.Response:
    try:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    except socket.gaierror as exc:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request) from exc


def dns_temporary(request: httpx.Request) -> httpx.Response:
    try:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    except socket.gaierror as exc:
        raise httpx.ConnectError("Temporary failure in name resolution", request=request) from exc


class ResetMidBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"items": ['
        raise httpx.ReadError("Connection reset by peer")

    async def __aiter__(self):  # type: ignore[no-untyped-def, override]
        yield b'{"items": ['
        raise httpx.ReadError("Connection reset by peer")


def reset_mid_body(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-length": "100"}, stream=ResetMidBody())


def test_a_permanent_dns_failure_is_not_retried() -> None:
    handler = Counting(dns_failure)
    with Client(transport=httpx.MockTransport(handler)) as client:  # noqa: SIM117
        with pytest.raises(DnsFailure) as caught:
            client.get("https://api.unresolvable.invalid/x")
    assert caught.value.attempts == 1
    assert len(handler.requests) == 1
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_a_temporary_dns_failure_is_retried_even_for_an_unkeyed_post() -> None:
    handler = Counting(dns_temporary)
    transport = httpx.MockTransport(handler)
    with Client(transport=transport, idempotency_keys=False) as client:  # noqa: SIM117
        with pytest.raises(DnsFailure) as caught:
            client.post("https://api.example.test/x")
    assert caught.value.attempts == 3
    assert caught.value.classification.request_sent is False


def test_a_reset_mid_body_is_a_lost_connection_retried_for_get() -> None:
    handler = Counting(reset_mid_body)
    with Client(transport=httpx.MockTransport(handler)) as client:  # noqa: SIM117
        with pytest.raises(ConnectionLost) as caught:
            client.get("https://api.example.test/items")
    assert caught.value.attempts == 3
    assert len(handler.requests) == 3


def test_a_reset_mid_body_is_not_resent_for_an_unkeyed_post() -> None:
    handler = Counting(reset_mid_body)
    transport = httpx.MockTransport(handler)
    with Client(transport=transport, idempotency_keys=False) as client:  # noqa: SIM117
        with pytest.raises(ConnectionLost):
            client.post("https://api.example.test/items")
    assert len(handler.requests) == 1


async def test_async_reset_mid_body_and_dns() -> None:
    reset = Counting(reset_mid_body)
    async with AsyncClient(transport=httpx.MockTransport(reset)) as client:
        with pytest.raises(ConnectionLost) as caught:
            await client.get("https://api.example.test/items")
    assert caught.value.attempts == 3
    dns = Counting(dns_failure)
    async with AsyncClient(transport=httpx.MockTransport(dns)) as client:
        with pytest.raises(DnsFailure):
            await client.get("https://api.unresolvable.invalid/x")
    assert len(dns.requests) == 1


class StreamingTransport(httpx.BaseTransport):
    """Consumes the body stream as a socket transport does (MockTransport caches it)."""

    def __init__(self) -> None:
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        for _ in request.stream:  # type: ignore[union-attr]
            pass
        return httpx.Response(503)


def test_a_one_shot_body_is_sent_once_and_the_caller_gets_the_real_error() -> None:
    def body() -> Iterator[bytes]:
        yield b"chunk"

    transport = StreamingTransport()
    with Client(transport=transport) as client:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            client.put("https://api.example.test/x", content=body())
    assert transport.attempts == 1
    assert caught.value.retry_stopped_by is RetryStop.ONE_SHOT_BODY
    assert "one-shot" in str(caught.value)


def test_build_request_adds_a_key_only_to_post_and_patch() -> None:
    with httpx.Client() as http:
        keyed = {
            method: build_request(http, method, "https://a.test/", add_idempotency_key=True)
            for method in ("GET", "POST", "PATCH", "PUT", "DELETE")
        }
        assert {m for m, r in keyed.items() if "Idempotency-Key" in r.headers} == {
            "POST",
            "PATCH",
        }
        assert keyed["POST"].headers["Idempotency-Key"] != keyed["PATCH"].headers["Idempotency-Key"]
        off = build_request(http, "POST", "https://a.test/", add_idempotency_key=False)
        assert "Idempotency-Key" not in off.headers
        mine = build_request(
            http,
            "POST",
            "https://a.test/",
            add_idempotency_key=True,
            headers={"Idempotency-Key": "k"},
        )
        assert mine.headers["Idempotency-Key"] == "k"


def test_check_response_passes_successes_and_raises_failures() -> None:
    request = httpx.Request("GET", "https://a.test/")
    ok = httpx.Response(200, json={"a": 1}, request=request)
    assert check_response(ok, request, expect_json=True) is ok
    with pytest.raises(ServiceUnavailable):
        check_response(httpx.Response(503, request=request), request)


def test_json_bodies_over_the_cap_are_refused() -> None:
    request = httpx.Request("GET", "https://a.test/")
    big = httpx.Response(200, content=b"[" + b"1," * 600 + b"1]", request=request)
    assert check_response(big, request, expect_json=True, max_json_bytes=2000) is big
    with pytest.raises(InvalidResponseBody):
        check_response(big, request, expect_json=True, max_json_bytes=1000)


def test_deeply_nested_json_is_an_invalid_body_not_a_crash() -> None:
    request = httpx.Request("GET", "https://a.test/")
    bomb = httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000, request=request)
    with pytest.raises(InvalidResponseBody):
        check_response(bomb, request, expect_json=True)


def test_send_maps_local_protocol_errors_to_configuration_errors() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http:
        request = http.build_request("GET", "https://a.test/")

        def bad(request: httpx.Request) -> httpx.Response:
            raise httpx.LocalProtocolError("illegal header value")

        with httpx.Client(transport=httpx.MockTransport(bad)) as broken:  # noqa: SIM117
            with pytest.raises(ConfigurationError):
                send(broken, Call(request, timeouts={}, replayable=True))


def test_bad_client_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError):
        make_sync_client(base_url="http://[::1", timeout=1.0, headers=None, transport=None)
