from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from errdiscount_sdk import (
    Classification,
    ErrorCategory,
    RetryDetails,
    RetryPolicy,
    ServiceUnavailable,
    Severity,
)
from errdiscount_sdk._http.retry import run_async, run_sync
from errdiscount_sdk.testing import backoff_disabled, disable_backoff, enable_backoff


def failing() -> str:
    request = httpx.Request("GET", "https://api.example.test/")
    raise ServiceUnavailable(
        "down",
        classification=Classification(
            category=ErrorCategory.PROTOCOL,
            severity=Severity.SEVERE,
            transient=True,
            retryable=True,
            error_type="503",
            description="down",
            status_code=503,
        ),
        request=request,
        response=httpx.Response(503, request=request),
    )


async def afailing() -> str:
    return failing()


POLICY = dict(initial_backoff=5.0, max_backoff=5.0, budget=None, deadline=None)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


@pytest.fixture
def async_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def fake(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake)
    return recorded


def test_backoff_is_on_by_default() -> None:
    assert not backoff_disabled()


def test_context_manager_turns_waits_off_and_back(sleeps: list[float]) -> None:
    details: list[RetryDetails] = []
    with disable_backoff():
        assert backoff_disabled()
        with pytest.raises(ServiceUnavailable) as caught:
            run_sync(RetryPolicy(**POLICY), failing, on_retry=details.append)  # type: ignore[arg-type]
    assert not backoff_disabled()
    assert caught.value.attempts == 3
    assert sleeps == []
    # on_retry still reports what would have been slept
    assert len(details) == 2
    assert all(0 <= d.wait <= 5 for d in details)


def test_plain_call_and_enable_backoff(sleeps: list[float]) -> None:
    disable_backoff()
    try:
        with pytest.raises(ServiceUnavailable):
            run_sync(RetryPolicy(**POLICY), failing)  # type: ignore[arg-type]
        assert sleeps == []
    finally:
        enable_backoff()
    assert not backoff_disabled()
    with pytest.raises(ServiceUnavailable):
        run_sync(RetryPolicy(**POLICY), failing)  # type: ignore[arg-type]
    assert len(sleeps) == 2


def test_nested_switches_restore_the_outer_setting() -> None:
    with disable_backoff():
        with disable_backoff():
            pass
        assert backoff_disabled()
    assert not backoff_disabled()


async def test_async_waits_are_off_too(async_sleeps: list[float]) -> None:
    with disable_backoff(), pytest.raises(ServiceUnavailable):
        await run_async(RetryPolicy(**POLICY), afailing)  # type: ignore[arg-type]
    assert async_sleeps == []
    with pytest.raises(ServiceUnavailable):
        await run_async(RetryPolicy(**POLICY), afailing)  # type: ignore[arg-type]
    assert len(async_sleeps) == 2
