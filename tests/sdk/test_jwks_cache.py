"""The remote JWKS cache against a real Starlette server on loopback.

Time is an injected clock (a list we move by hand): no sleeps, no timing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from errdiscount_sdk import (
    AsyncRemoteKeySet,
    AsyncTokenVerifier,
    ConfigurationError,
    KeySet,
    KeySetUnavailable,
    RemoteKeySet,
    SigningKey,
    TokenExpired,
    TokenIssuer,
    TokenVerifier,
    UnknownKey,
    generate_signing_key,
)
from errdiscount_sdk._tokens.jwks_cache import cache_ttl
from tests.support.server import serve
from tests.support.token_helpers import AUDIENCE, ISSUER, key_for


@dataclass
class JwksServer:
    """What the fake provider serves; tests change it between calls."""

    keys: list[SigningKey]
    cache_control: str | None = "max-age=300"
    status: int = 200
    body: bytes | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    fetches: int = 0
    gate: threading.Event | None = None

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.fetches += 1
            if self.gate is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 5)
            headers = dict(self.extra_headers)
            if self.cache_control:
                headers["Cache-Control"] = self.cache_control
            if self.status != 200:
                return Response("down", status_code=self.status, headers=headers)
            if self.body is not None:
                return Response(self.body, media_type="application/json", headers=headers)
            return JSONResponse(KeySet(self.keys).to_jwks(), headers=headers)

        async def moved(request: Request) -> Response:
            self.fetches += 1
            return RedirectResponse("/jwks.json", status_code=302)

        return Starlette(routes=[Route("/jwks.json", jwks), Route("/moved", moved)])


@pytest.fixture
def provider() -> Iterator[tuple[JwksServer, str]]:
    state = JwksServer(keys=[key_for("EdDSA")])
    with serve(state.app()) as base_url:
        yield state, base_url


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _token(key: SigningKey) -> str:
    return TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE).issue(
        subject="u1",
        error_code="PAY_001",
        category="network",
        severity="minor",
        compensation={"kind": "coupon", "amount": 2, "unit": "USD"},
    )


def _remote(url: str, clock: Clock, **kwargs: Any) -> RemoteKeySet:
    return RemoteKeySet(f"{url}/jwks.json", allow_http_loopback=True, clock=clock, **kwargs)


def test_keys_are_fetched_once_and_cached(provider) -> None:
    state, url = provider
    clock = Clock()
    with _remote(url, clock) as remote:
        verifier = TokenVerifier(remote, issuer=ISSUER, audience=AUDIENCE)
        token = _token(key_for("EdDSA"))
        for _ in range(20):
            assert verifier.verify(token).sub == "u1"
    assert state.fetches == 1


def test_cache_control_max_age_is_honoured(provider) -> None:
    state, url = provider
    state.cache_control = "public, max-age=120"
    clock = Clock()
    remote = _remote(url, clock)
    kid = key_for("EdDSA").kid
    remote.get_key(kid)
    clock.now += 119
    remote.get_key(kid)
    assert state.fetches == 1
    clock.now += 1
    remote.get_key(kid)
    assert state.fetches == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=1", 60.0),  # bounded below by min_ttl
        ("max-age=999999999", 86400.0),  # bounded above by max_ttl
        ("no-store", 60.0),
        ("no-cache, max-age=600", 60.0),
        (None, 300.0),  # default_ttl
        ("max-age=nonsense", 300.0),
    ],
)
def test_cache_lifetime_bounds(provider, header, expected) -> None:
    state, url = provider
    state.cache_control = header
    clock = Clock()
    remote = _remote(url, clock)
    kid = key_for("EdDSA").kid
    remote.get_key(kid)
    clock.now += expected - 0.5
    remote.get_key(kid)
    assert state.fetches == 1
    clock.now += 0.5
    remote.get_key(kid)
    assert state.fetches == 2


def test_age_header_shortens_the_lifetime() -> None:
    headers = httpx.Headers({"Cache-Control": "max-age=600", "Age": "500"})
    assert cache_ttl(headers, default=300, minimum=60, maximum=3600) == 100
    assert cache_ttl(httpx.Headers({"Age": "5"}), default=300, minimum=60, maximum=3600) == 300


def test_rotation_new_kid_triggers_one_refetch(provider) -> None:
    state, url = provider
    old, new = key_for("EdDSA"), key_for("ES256")
    clock = Clock()
    verifier = TokenVerifier(_remote(url, clock), issuer=ISSUER, audience=AUDIENCE)
    verifier.verify(_token(old))
    clock.now += 31  # past the cooldown, well within max-age
    state.keys = [new, old]  # the provider rotates: new active key, old one still published
    assert verifier.verify(_token(new)).kid == new.kid
    assert verifier.verify(_token(old)).kid == old.kid
    assert state.fetches == 2


def test_removed_key_stops_verifying_after_refresh(provider) -> None:
    state, url = provider
    old, new = key_for("EdDSA"), key_for("ES256")
    clock = Clock()
    verifier = TokenVerifier(_remote(url, clock), issuer=ISSUER, audience=AUDIENCE)
    old_token = _token(old)
    verifier.verify(old_token)
    state.keys = [new]
    clock.now += 300  # max-age passed: the next lookup refreshes
    with pytest.raises(UnknownKey):
        verifier.verify(old_token)
    assert state.fetches == 2


def test_unknown_kids_refetch_at_most_once_per_cooldown(provider) -> None:
    state, url = provider
    clock = Clock()
    remote = _remote(url, clock, cooldown=30)
    remote.get_key(key_for("EdDSA").kid)  # initial fetch
    clock.now += 30
    for i in range(50):  # an attacker sprays random kids
        with pytest.raises(UnknownKey):
            remote.get_key(f"random-{i}")
    assert state.fetches == 2  # the first unknown kid refetched once, the rest waited
    with pytest.raises(UnknownKey):
        remote.get_key("random-0")  # negative cache
    clock.now += 30
    with pytest.raises(UnknownKey):
        remote.get_key("random-0")
    assert state.fetches == 3


def test_failure_keeps_last_good_keys_for_a_bounded_time(provider) -> None:
    state, url = provider
    clock = Clock()
    remote = _remote(url, clock, stale_if_error=600, cooldown=30)
    verifier = TokenVerifier(remote, issuer=ISSUER, audience=AUDIENCE)
    token = _token(key_for("EdDSA"))
    verifier.verify(token)
    state.status = 503
    clock.now += 300  # stale: a refresh is attempted and fails
    verifier.verify(token)
    assert state.fetches == 2
    verifier.verify(token)  # no hammering: the failure waits out the cooldown
    assert state.fetches == 2
    clock.now += 30
    verifier.verify(token)
    assert state.fetches == 3
    clock.now = 1000 + 300 + 600  # stale_if_error after going stale: give up
    with pytest.raises(KeySetUnavailable, match="503"):
        verifier.verify(token)
    state.status = 200
    clock.now += 30
    verifier.verify(token)  # recovers as soon as the provider does


def test_no_keys_and_failing_server_is_unavailable(provider) -> None:
    state, url = provider
    state.status = 500
    clock = Clock()
    remote = _remote(url, clock)
    for _ in range(3):
        with pytest.raises(KeySetUnavailable):
            remote.get_key("any")
    assert state.fetches == 1  # the cooldown also applies after a failed first fetch


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}).encode(),
            "invalid JWKS",
        ),
        (b"<html>not json</html>", "invalid JWKS"),
        (json.dumps({"keys": []}).encode(), "no usable"),
        (b" " * (64 * 1024 + 10), "larger than"),
    ],
)
def test_bad_documents_are_fetch_failures(provider, body, reason) -> None:
    state, url = provider
    state.body = body
    with pytest.raises(KeySetUnavailable, match=reason):
        _remote(url, Clock()).get_key("any")


def test_bad_document_after_good_keeps_last_good(provider) -> None:
    state, url = provider
    clock = Clock()
    remote = _remote(url, clock)
    kid = key_for("EdDSA").kid
    remote.get_key(kid)
    state.body = json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).encode()
    clock.now += 300
    assert remote.get_key(kid).kid == kid
    assert state.fetches == 2


def test_redirects_are_not_followed(provider) -> None:
    state, url = provider
    remote = RemoteKeySet(f"{url}/moved", allow_http_loopback=True, clock=Clock())
    with pytest.raises(KeySetUnavailable, match="302"):
        remote.get_key(key_for("EdDSA").kid)
    assert state.fetches == 1


def test_connection_refused_is_unavailable() -> None:
    with serve(Starlette()) as url:
        pass  # the server is gone: nothing listens on that port any more
    with pytest.raises(KeySetUnavailable, match="ConnectError"):
        RemoteKeySet(f"{url}/jwks.json", allow_http_loopback=True).get_key("k")


@pytest.mark.parametrize(
    ("url", "flag"),
    [
        ("http://127.0.0.1:1/jwks.json", False),
        ("http://example.com/jwks.json", True),
        ("ftp://example.com/jwks.json", True),
        ("not a url at all", True),
        ("https:///nohost", False),
    ],
)
def test_only_https_or_explicit_loopback_http(url: str, flag: bool) -> None:
    with pytest.raises(ConfigurationError):
        RemoteKeySet(url, allow_http_loopback=flag)


def test_bad_cache_settings() -> None:
    with pytest.raises(ConfigurationError):
        RemoteKeySet("https://example.com/j", min_ttl=100, default_ttl=50)
    with pytest.raises(ConfigurationError):
        RemoteKeySet("https://example.com/j", cooldown=-1)


def test_threads_share_one_fetch(provider) -> None:
    state, url = provider
    state.gate = threading.Event()
    verifier = TokenVerifier(_remote(url, Clock()), issuer=ISSUER, audience=AUDIENCE)
    token = _token(key_for("EdDSA"))
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(verifier.verify(token).sub))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    state.gate.set()
    for thread in threads:
        thread.join(10)
    assert results == ["u1"] * 8
    assert state.fetches == 1


def test_from_jwks_url(provider) -> None:
    _state, url = provider
    verifier = TokenVerifier.from_jwks_url(
        f"{url}/jwks.json", issuer=ISSUER, audience=AUDIENCE, allow_http_loopback=True, cooldown=5
    )
    assert verifier.verify(_token(key_for("EdDSA"))).sub == "u1"


async def test_async_single_flight_and_verify(provider) -> None:
    state, url = provider
    state.gate = threading.Event()
    clock = Clock()
    async with AsyncRemoteKeySet(
        f"{url}/jwks.json", allow_http_loopback=True, clock=clock
    ) as remote:
        verifier = AsyncTokenVerifier(remote, issuer=ISSUER, audience=AUDIENCE)
        token = _token(key_for("EdDSA"))
        tasks = [asyncio.create_task(verifier.verify(token)) for _ in range(20)]
        # The fetch is blocked on the server side; the event loop still runs other work.
        ticks = 0
        while state.fetches == 0:
            await asyncio.sleep(0)
            ticks += 1
        assert ticks > 0
        state.gate.set()
        results = await asyncio.gather(*tasks)
        assert {r.sub for r in results} == {"u1"}
        assert state.fetches == 1
        # Rotation and unknown kids behave as in the sync cache.
        new = generate_signing_key("ES256")
        state.keys = [new]
        clock.now += 31
        assert (await verifier.verify(_token(new))).kid == new.kid
        with pytest.raises(UnknownKey):
            await verifier.verify(_token(generate_signing_key()))
        assert state.fetches == 2


async def test_async_failure_is_unavailable(provider) -> None:
    state, url = provider
    state.status = 502
    verifier = AsyncTokenVerifier.from_jwks_url(
        f"{url}/jwks.json", issuer=ISSUER, audience=AUDIENCE, allow_http_loopback=True
    )
    with pytest.raises(KeySetUnavailable, match="502"):
        await verifier.verify(_token(key_for("EdDSA")))


def test_from_jwks_url_refuses_an_ambiguous_clock(provider) -> None:
    _state, url = provider
    for factory in (TokenVerifier.from_jwks_url, AsyncTokenVerifier.from_jwks_url):
        with pytest.raises(ConfigurationError, match="token_clock"):
            factory(
                f"{url}/jwks.json",
                issuer=ISSUER,
                audience=AUDIENCE,
                allow_http_loopback=True,
                clock=Clock(),
            )


def test_from_jwks_url_keeps_token_time_and_cache_time_apart(provider) -> None:
    """A monotonic test clock for the cache never becomes the time tokens are judged by."""
    state, url = provider
    cache_clock = Clock()  # monotonic seconds: 1000, nowhere near Unix time
    wall = [1_800_000_000.0]
    token = _token(key_for("EdDSA"))  # issued now, valid 30 days
    verifier = TokenVerifier.from_jwks_url(
        f"{url}/jwks.json",
        issuer=ISSUER,
        audience=AUDIENCE,
        allow_http_loopback=True,
        cache_clock=cache_clock,
        token_clock=lambda: wall[0],
    )
    with pytest.raises(TokenExpired):  # judged by token_clock (2027), not by 1000 s
        verifier.verify(token)
    wall[0] = float(time.time())
    assert verifier.verify(token).sub == "u1"
    assert state.fetches == 1
    cache_clock.now += 300  # max-age=300 passed on the cache's clock only
    verifier.verify(token)
    assert state.fetches == 2
