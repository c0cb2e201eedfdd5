"""Key rotation under steady traffic, against a real JWKS server on loopback.

Time is a fake clock moved by one second per request ("steady traffic"); the
JWKS is served by uvicorn with ``Cache-Control: max-age=3600``, the lifetime
that made a rotated key stay refused for an hour. Two promises, sync and async:

- an unknown kid causes at most one refetch per cooldown, whatever the traffic;
- a key published after a rotation is accepted within about one cooldown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errdiscount_sdk import (
    AsyncRemoteKeySet,
    AsyncTokenVerifier,
    KeySet,
    RemoteKeySet,
    SigningKey,
    TokenIssuer,
    TokenVerifier,
    UnknownKey,
    generate_signing_key,
)
from tests.support.server import serve
from tests.support.token_helpers import AUDIENCE, ISSUER, key_for

COOLDOWN = 30.0
MAX_AGE = 3600


@dataclass
class Provider:
    keys: list[SigningKey]
    fetch_times: list[float] = field(default_factory=list)
    clock: FakeClock | None = None

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.fetch_times.append(self.clock.now if self.clock else 0.0)
            return JSONResponse(
                KeySet(self.keys).to_jwks(), headers={"Cache-Control": f"max-age={MAX_AGE}"}
            )

        return Starlette(routes=[Route("/jwks.json", jwks)])


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[tuple[Provider, str, FakeClock]]:
    clock = FakeClock()
    state = Provider(keys=[key_for("EdDSA")], clock=clock)
    with serve(state.app()) as base_url:
        yield state, f"{base_url}/jwks.json", clock


def _token(key: SigningKey) -> str:
    return TokenIssuer(key, issuer=ISSUER, audience=AUDIENCE).issue(
        subject="u1",
        error_code="PAY_001",
        category="network",
        severity="minor",
        compensation={"kind": "coupon", "amount": 2, "unit": "USD"},
    )


def _fetches_per_window(times: list[float], start: float, end: float) -> int:
    """The most fetches inside any cooldown-long window between start and end."""
    inside = [t for t in times if start <= t <= end]
    return max((sum(1 for u in inside if t <= u < t + COOLDOWN) for t in inside), default=0)


def _sync_verifier(url: str, clock: FakeClock) -> TokenVerifier:
    remote = RemoteKeySet(url, allow_http_loopback=True, cooldown=COOLDOWN, clock=clock)
    return TokenVerifier(remote, issuer=ISSUER, audience=AUDIENCE)


def _first_accepted_sync(verifier: TokenVerifier, token: str, clock: FakeClock, until: float):
    while clock.now < until:
        clock.now += 1
        try:
            verifier.verify(token)
        except UnknownKey:
            continue
        return clock.now
    return None


def test_a_rotated_key_is_accepted_within_one_cooldown_under_steady_traffic(provider) -> None:
    state, url, clock = provider
    old, new = key_for("EdDSA"), generate_signing_key("EdDSA")
    verifier = _sync_verifier(url, clock)
    verifier.verify(_token(old))  # t=0: first fetch, cached for an hour
    clock.now = 10.0
    state.keys = [new, old]  # the provider rotates; clients with new tokens arrive at once
    rotated_at = clock.now
    accepted = _first_accepted_sync(verifier, _token(new), clock, until=MAX_AGE + 100)
    assert accepted is not None and accepted <= rotated_at + COOLDOWN + 1
    assert verifier.verify(_token(old)).kid == old.kid  # the retired key still verifies
    assert _fetches_per_window(state.fetch_times, 0, clock.now) <= 1


def test_a_new_key_is_found_even_when_traffic_for_it_began_before_it_was_published(
    provider,
) -> None:
    """Tokens for a kid the JWKS does not list yet, every second, then it appears."""
    state, url, clock = provider
    old, new = key_for("EdDSA"), generate_signing_key("EdDSA")
    verifier = _sync_verifier(url, clock)
    verifier.verify(_token(old))
    new_token = _token(new)
    published_at = 100.0
    accepted = None
    while clock.now < 2 * MAX_AGE:
        clock.now += 1
        if clock.now == published_at:
            state.keys = [new, old]
        try:
            verifier.verify(new_token)
        except UnknownKey:
            continue
        accepted = clock.now
        break
    assert accepted is not None and published_at <= accepted <= published_at + COOLDOWN + 1
    assert _fetches_per_window(state.fetch_times, 0, clock.now) <= 1


def test_unknown_kids_every_second_refetch_at_most_once_per_cooldown(provider) -> None:
    state, url, clock = provider
    verifier = _sync_verifier(url, clock)
    verifier.verify(_token(key_for("EdDSA")))
    stranger = _token(generate_signing_key("EdDSA"))  # never published
    for _ in range(600):
        clock.now += 1
        with pytest.raises(UnknownKey):
            verifier.verify(stranger)
    assert _fetches_per_window(state.fetch_times, 0, clock.now) <= 1
    # ... and the cooldown is not a ban: about one refetch per cooldown happened.
    assert 600 / COOLDOWN - 1 <= len(state.fetch_times) - 1 <= 600 / COOLDOWN + 1


async def test_async_rotation_under_steady_traffic(provider) -> None:
    state, url, clock = provider
    old, new = key_for("EdDSA"), generate_signing_key("ES256")
    async with AsyncRemoteKeySet(
        url, allow_http_loopback=True, cooldown=COOLDOWN, clock=clock
    ) as remote:
        verifier = AsyncTokenVerifier(remote, issuer=ISSUER, audience=AUDIENCE)
        await verifier.verify(_token(old))
        new_token, stranger = _token(new), _token(generate_signing_key())
        published_at, accepted = 100.0, None
        while clock.now < 2 * MAX_AGE:
            clock.now += 1
            if clock.now == published_at:
                state.keys = [new, old]
            with pytest.raises(UnknownKey):
                await verifier.verify(stranger)  # hostile noise in the same traffic
            try:
                await verifier.verify(new_token)
            except UnknownKey:
                continue
            accepted = clock.now
            break
        assert accepted is not None and accepted <= published_at + COOLDOWN + 1
        assert (await verifier.verify(_token(old))).kid == old.kid
    assert _fetches_per_window(state.fetch_times, 0, clock.now) <= 1
