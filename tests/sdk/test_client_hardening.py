"""Issue 10, "The client": each defect of wave 1, against real servers on loopback.

Every test here failed on the wave-1 code: POSTs resent after they may have
reached the server, one-shot bodies sent twice, trickling bodies outliving the
deadline, error bodies read whole, RetryAfterTooLong outside the status class,
silent budget/deadline stops, missing httpx call options, late TypeErrors.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from errdiscount_sdk import (
    AlertUrlPolicy,
    AsyncClient,
    Client,
    ConfigurationError,
    KeySet,
    RateLimited,
    ReadTimeout,
    RetryAfterTooLong,
    RetryBudget,
    RetryDetails,
    RetryPolicy,
    RetryStop,
    ServerError,
    ServiceUnavailable,
    TokenVerifier,
    UnexpectedStatus,
)
from errdiscount_sdk._http.transport import ERROR_BODY_CAP
from errdiscount_sdk.requests import Session
from errdiscount_sdk.testing import disable_backoff
from tests.support.faults import FaultApp, serve_faults
from tests.support.hostile import HostileApp, serve_hostile

# Generous bounds: they tell "bounded by the deadline" from "held until the
# server finished" (30 s of trickle), not fast from slow.
TRICKLE = {"status": 503, "bytes": 60, "interval": 0.5}
HELD_FOR_THE_WHOLE_TRICKLE = 15.0


@pytest.fixture
def faults() -> Iterator[tuple[FaultApp, str]]:
    with disable_backoff(), serve_faults() as pair:
        yield pair


@pytest.fixture
def hostile() -> Iterator[tuple[HostileApp, str]]:
    with disable_backoff(), serve_hostile() as pair:
        yield pair


# -- a POST is not resent after it may have reached the server -----------------------------


def test_a_timed_out_post_is_sent_once_by_default(faults: tuple[FaultApp, str]) -> None:
    app, url = faults
    with Client(base_url=url, timeout=0.3) as client, pytest.raises(ReadTimeout) as caught:
        client.post("/slow", json={"amount": 5})
    assert app.count("/slow") == 1
    assert caught.value.attempts == 1
    assert caught.value.retry_stopped_by is RetryStop.UNSAFE_RESEND
    assert app.keys("/slow") == [None]  # no key: nothing will ever be resent with it


async def test_async_a_timed_out_post_is_sent_once_by_default(
    faults: tuple[FaultApp, str],
) -> None:
    app, url = faults
    async with AsyncClient(base_url=url, timeout=0.3) as client:
        with pytest.raises(ReadTimeout) as caught:
            await client.post("/slow")
    assert (app.count("/slow"), caught.value.retry_stopped_by) == (1, RetryStop.UNSAFE_RESEND)


def test_the_client_switch_opts_posts_in_with_one_key(faults: tuple[FaultApp, str]) -> None:
    app, url = faults
    with Client(base_url=url, timeout=0.3, retry_non_idempotent=True) as client:  # noqa: SIM117
        with pytest.raises(ReadTimeout) as caught:
            client.post("/slow")
    keys = app.keys("/slow")
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
    assert caught.value.retry_stopped_by is RetryStop.MAX_ATTEMPTS


def test_an_explicit_key_opts_one_call_in(faults: tuple[FaultApp, str]) -> None:
    app, url = faults
    with Client(base_url=url) as client:
        client.post("/flaky/k", params={"failures": 2}, idempotency_key="order-7")
        with pytest.raises(ServiceUnavailable):
            client.post("/flaky/n", params={"failures": 2})
    assert app.keys("/flaky/k") == ["order-7"] * 3
    assert app.keys("/flaky/n") == [None]


# -- a one-shot body is never sent twice -----------------------------------------------------


def test_a_generator_body_is_sent_once_and_the_503_is_raised(
    faults: tuple[FaultApp, str],
) -> None:
    app, url = faults

    def body() -> Iterator[bytes]:
        yield b"part one, "
        yield b"part two"

    with Client(base_url=url) as client, pytest.raises(ServiceUnavailable) as caught:
        client.put("/flaky/g", params={"failures": 5}, content=body())
    assert app.count("/flaky/g") == 1
    assert caught.value.retry_stopped_by is RetryStop.ONE_SHOT_BODY


async def test_async_a_generator_body_is_sent_once(faults: tuple[FaultApp, str]) -> None:
    app, url = faults

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    async with AsyncClient(base_url=url) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.put("/flaky/a", params={"failures": 5}, content=body())
    assert (app.count("/flaky/a"), caught.value.retry_stopped_by) == (1, RetryStop.ONE_SHOT_BODY)


# -- deadlines bound the whole call ----------------------------------------------------------


def test_the_retry_deadline_bounds_a_trickling_error_body(
    hostile: tuple[HostileApp, str],
) -> None:
    app, url = hostile
    policy = RetryPolicy(deadline=2.0)
    started = time.monotonic()
    with Client(base_url=url, timeout=1.0, retry=policy) as client:  # noqa: SIM117
        with pytest.raises(ServerError) as caught:
            client.get("/trickle", params=TRICKLE)
    assert time.monotonic() - started < HELD_FOR_THE_WHOLE_TRICKLE
    assert caught.value.status_code == 503
    assert caught.value.retry_stopped_by is RetryStop.DEADLINE
    assert app.hung_up.wait(5) and not app.finished.is_set()


def test_the_retry_deadline_bounds_a_trickling_success_body(
    hostile: tuple[HostileApp, str],
) -> None:
    app, url = hostile
    with Client(base_url=url, timeout=1.0, retry=RetryPolicy(deadline=2.0)) as client:  # noqa: SIM117
        with pytest.raises(ReadTimeout) as caught:
            client.get("/trickle", params={**TRICKLE, "status": 200})
    assert caught.value.retry_stopped_by is RetryStop.DEADLINE
    assert app.hung_up.wait(5) and not app.finished.is_set()


def test_an_attempt_timeout_bounds_each_attempt_without_a_policy(
    hostile: tuple[HostileApp, str],
) -> None:
    app, url = hostile
    started = time.monotonic()
    with Client(base_url=url, timeout=1.0, retry=None, attempt_timeout=1.5) as client:  # noqa: SIM117
        with pytest.raises(ReadTimeout) as caught:
            client.get("/trickle", params={**TRICKLE, "status": 200})
    assert time.monotonic() - started < HELD_FOR_THE_WHOLE_TRICKLE
    assert caught.value.retry_stopped_by is RetryStop.RETRIES_DISABLED
    assert app.hung_up.wait(5) and not app.finished.is_set()


async def test_async_the_retry_deadline_bounds_a_trickling_body(
    hostile: tuple[HostileApp, str],
) -> None:
    _, url = hostile
    started = time.monotonic()
    async with AsyncClient(base_url=url, timeout=1.0, retry=RetryPolicy(deadline=2.0)) as client:
        with pytest.raises(ServerError) as caught:
            await client.get("/trickle", params=TRICKLE)
    assert time.monotonic() - started < HELD_FOR_THE_WHOLE_TRICKLE
    assert caught.value.retry_stopped_by is RetryStop.DEADLINE


# -- error bodies are read with a cap --------------------------------------------------------


def test_a_huge_error_body_is_read_only_up_to_the_cap(hostile: tuple[HostileApp, str]) -> None:
    app, url = hostile
    with Client(base_url=url) as client, pytest.raises(UnexpectedStatus) as caught:
        client.get("/huge", params={"status": 400, "mb": 100})
    response = caught.value.response
    assert response is not None and response.status_code == 400
    assert len(response.content) == ERROR_BODY_CAP
    assert caught.value.payload is None  # over the parser's cap: not a structured error
    assert app.hung_up.wait(5)
    # Loopback socket buffers hold a few MiB at most; never the whole 100 MiB.
    assert app.bytes_sent < 32 * 1024 * 1024 and not app.finished.is_set()


async def test_async_a_huge_error_body_is_read_only_up_to_the_cap(
    hostile: tuple[HostileApp, str],
) -> None:
    app, url = hostile
    async with AsyncClient(base_url=url) as client:
        with pytest.raises(UnexpectedStatus) as caught:
            await client.get("/huge", params={"status": 400, "mb": 100})
    assert caught.value.response is not None
    assert len(caught.value.response.content) == ERROR_BODY_CAP
    assert app.hung_up.wait(5) and not app.finished.is_set()


def test_requests_session_reads_error_bodies_with_the_cap_too(
    hostile: tuple[HostileApp, str],
) -> None:
    app, url = hostile
    with Session() as session, pytest.raises(UnexpectedStatus) as caught:
        session.get(f"{url}/huge", params={"status": 400, "mb": 100})
    assert caught.value.response is not None
    assert len(caught.value.response.content) == ERROR_BODY_CAP
    assert app.hung_up.wait(5) and not app.finished.is_set()


# -- RetryAfterTooLong keeps the status class; the cap-and-retry mode ------------------------


def test_a_503_asking_too_long_is_caught_as_service_unavailable(
    faults: tuple[FaultApp, str],
) -> None:
    _, url = faults
    # pytest.raises(ServiceUnavailable) is "except ServiceUnavailable".
    with Client(base_url=url) as client, pytest.raises(ServiceUnavailable) as caught:
        client.get("/unavailable", params={"after": "120"})
    error = caught.value
    assert isinstance(error, RetryAfterTooLong)
    assert (error.requested_wait, error.limit) == (120, 30)
    assert error.retry_stopped_by is RetryStop.RETRY_AFTER_TOO_LONG


def test_a_429_asking_too_long_is_caught_as_rate_limited(
    hostile: tuple[HostileApp, str],
) -> None:
    _, url = hostile
    with Client(base_url=url) as client, pytest.raises(RateLimited) as caught:
        client.get("/ratelimited", params={"after": "600"})
    assert isinstance(caught.value, RetryAfterTooLong)
    assert caught.value.status_code == 429


def test_the_cap_mode_waits_the_cap_and_retries(faults: tuple[FaultApp, str]) -> None:
    app, url = faults
    details: list[RetryDetails] = []
    policy = RetryPolicy(max_retry_after=0.05, long_retry_after="cap")
    with Client(base_url=url, retry=policy, on_retry=details.append) as client:  # noqa: SIM117
        with pytest.raises(ServiceUnavailable) as caught:
            client.get("/unavailable", params={"after": "120"})
    assert not isinstance(caught.value, RetryAfterTooLong)
    assert [d.wait for d in details] == [0.05, 0.05]
    assert app.count("/unavailable") == 3
    assert caught.value.retry_stopped_by is RetryStop.MAX_ATTEMPTS


def test_long_retry_after_takes_only_raise_or_cap() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(long_retry_after="wait")  # type: ignore[arg-type]


# -- the error says why retries stopped ------------------------------------------------------


def test_an_empty_budget_is_named_on_the_error(faults: tuple[FaultApp, str]) -> None:
    app, url = faults
    policy = RetryPolicy(budget=RetryBudget(max_tokens=1, token_ratio=0))
    with Client(base_url=url, retry=policy) as client:
        with pytest.raises(ServiceUnavailable) as first:
            client.get("/flaky/b1", params={"failures": 9})
        with pytest.raises(ServiceUnavailable) as second:
            client.get("/flaky/b2", params={"failures": 9})
    assert (first.value.attempts, first.value.retry_stopped_by) == (2, RetryStop.BUDGET)
    assert (second.value.attempts, second.value.retry_stopped_by) == (1, RetryStop.BUDGET)
    assert "retry budget is exhausted" in str(second.value)
    assert app.count("/flaky/b1") + app.count("/flaky/b2") == 3


def test_a_deadline_stop_is_named_on_the_error(faults: tuple[FaultApp, str]) -> None:
    _, url = faults
    policy = RetryPolicy(deadline=0.5, long_retry_after="cap", max_retry_after=5)
    with Client(base_url=url, retry=policy) as client, pytest.raises(ServiceUnavailable) as caught:
        client.get("/unavailable", params={"after": "2"})
    assert (caught.value.attempts, caught.value.retry_stopped_by) == (1, RetryStop.DEADLINE)
    assert "deadline" in str(caught.value)


# -- drop-in for httpx: follow_redirects=, auth= per call, stream() ---------------------------


def test_follow_redirects_per_call(hostile: tuple[HostileApp, str]) -> None:
    _, url = hostile
    with Client(base_url=url) as client:
        assert client.get("/redirect").status_code == 302
        followed = client.get("/redirect", follow_redirects=True)
    assert followed.json() == {"landed": True}
    assert [r.status_code for r in followed.history] == [302]


def test_auth_per_call(hostile: tuple[HostileApp, str]) -> None:
    _, url = hostile
    with Client(base_url=url) as client:
        plain = client.get("/whoami").json()["authorization"]
        basic = client.get("/whoami", auth=("ada", "s3cret")).json()["authorization"]
    assert plain == ""
    assert basic == httpx.BasicAuth("ada", "s3cret")._auth_header


async def test_async_follow_redirects_and_auth_per_call(hostile: tuple[HostileApp, str]) -> None:
    _, url = hostile
    async with AsyncClient(base_url=url) as client:
        followed = await client.get("/redirect", follow_redirects=True)
        seen = (await client.get("/whoami", auth=("ada", "pw"))).json()["authorization"]
    assert followed.json() == {"landed": True}
    assert seen.startswith("Basic ")


def test_stream_leaves_the_body_to_the_caller(hostile: tuple[HostileApp, str]) -> None:
    _, url = hostile
    with (
        Client(base_url=url) as client,
        client.stream("GET", "/lines", params={"n": 3}) as response,
    ):
        assert not response.is_stream_consumed
        lines = list(response.iter_lines())
    assert lines == ["line 0", "line 1", "line 2"]
    assert response.is_closed


def test_stream_classifies_and_retries_on_the_status(faults: tuple[FaultApp, str]) -> None:
    app, url = faults
    with Client(base_url=url) as client:
        with (
            pytest.raises(ServiceUnavailable) as caught,
            client.stream("GET", "/flaky/s", params={"failures": 9}),
        ):
            pytest.fail("the block must not run for a failing status")
        with client.stream("GET", "/flaky/t", params={"failures": 1}) as response:
            assert response.read() and response.json()["ok"] is True
    assert (caught.value.attempts, app.count("/flaky/s"), app.count("/flaky/t")) == (3, 3, 2)


async def test_async_stream(hostile: tuple[HostileApp, str]) -> None:
    _, url = hostile
    async with AsyncClient(base_url=url) as client:
        async with client.stream("GET", "/lines", params={"n": 2}) as response:
            lines = [line async for line in response.aiter_lines()]
        with pytest.raises(UnexpectedStatus):
            async with client.stream("GET", "/huge", params={"status": 400, "mb": 1}):
                pytest.fail("the block must not run for a failing status")
    assert lines == ["line 0", "line 1"]


# -- bad arguments fail at construction with ConfigurationError ------------------------------


BAD_ARGUMENTS: dict[str, Callable[[], object]] = {
    "Client(timeout='5')": lambda: Client(timeout="5"),  # type: ignore[arg-type]
    "AsyncClient(timeout='5')": lambda: AsyncClient(timeout="5"),  # type: ignore[arg-type]
    "Client(timeout=-1)": lambda: Client(timeout=-1),
    "Client(attempt_timeout='1')": lambda: Client(attempt_timeout="1"),  # type: ignore[arg-type]
    "Client(retry_non_idempotent='yes')": lambda: Client(retry_non_idempotent="yes"),  # type: ignore[arg-type]
    "Session(timeout='5')": lambda: Session(timeout="5"),  # type: ignore[arg-type]
    "RetryBudget(max_tokens='8')": lambda: RetryBudget(max_tokens="8"),  # type: ignore[arg-type]
    "RetryBudget(token_ratio=True)": lambda: RetryBudget(token_ratio=True),
    "RetryPolicy(initial_backoff='1')": lambda: RetryPolicy(initial_backoff="1"),  # type: ignore[arg-type]
    "RetryPolicy(deadline=nan)": lambda: RetryPolicy(deadline=float("nan")),
    "RetryPolicy(budget=8)": lambda: RetryPolicy(budget=8),  # type: ignore[arg-type]
    "AlertUrlPolicy(allowed_hosts=None)": lambda: AlertUrlPolicy(allowed_hosts=None),  # type: ignore[arg-type]
    "AlertUrlPolicy(allowed_hosts=[5])": lambda: AlertUrlPolicy(allowed_hosts=[5]),  # type: ignore[list-item]
    "AlertUrlPolicy(allowed_ports=443)": lambda: AlertUrlPolicy(
        allowed_hosts=["a.example"],
        allowed_ports=443,
    ),
    "TokenVerifier(leeway='30')": lambda: TokenVerifier(
        KeySet([]),
        issuer="i",
        audience="a",
        leeway="30",  # type: ignore[arg-type]
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_ARGUMENTS))
def test_bad_arguments_fail_at_construction(name: str) -> None:
    with pytest.raises(ConfigurationError):
        BAD_ARGUMENTS[name]()


def test_a_bad_idempotency_key_fails_before_anything_is_sent(
    faults: tuple[FaultApp, str],
) -> None:
    app, url = faults
    with Client(base_url=url) as client:
        for key in (5, "", "new\nline", "k" * 256):
            with pytest.raises(ConfigurationError, match="idempotency_key"):
                client.post("/ok", idempotency_key=key)
    assert app.count("/ok") == 0


def test_good_arguments_of_each_kind_are_accepted() -> None:
    Client(timeout=httpx.Timeout(5.0)).close()
    Client(timeout=(1, 2, 3, None)).close()  # type: ignore[arg-type]
    Client(timeout=None, attempt_timeout=2).close()
    TokenVerifier(KeySet([]), issuer="i", audience="a", leeway=dt.timedelta(seconds=30))
    AlertUrlPolicy(allowed_hosts=("a.example",), allowed_ports=[443, 8443])
