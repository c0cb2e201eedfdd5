"""`RedemptionClient` and `AsyncRedemptionClient`: redeem discount tokens at a server.

Retries: at most ``retry`` attempts (default 3) on transient failures — network
errors, 502/503/504, 429, and 409 IDEMPOTENCY_KEY_IN_FLIGHT — honouring
``Retry-After`` up to ``max_retry_wait`` seconds (longer: `RetryAfterTooLong`, not
slept). Redeeming is safe to retry because every attempt carries the same
``Idempotency-Key``: the server replays the first outcome instead of redeeming twice.

Server refusals map to the typed errors of the tree: TOKEN_* → `TokenRejected`,
TOKEN_ALREADY_REDEEMED → `AlreadyRedeemed`, BUDGET_EXHAUSTED / INVENTORY_EXHAUSTED →
`BudgetExhausted`, USER_CAP_REACHED → `UserCapReached`, IDEMPOTENCY_KEY_* →
`IdempotencyConflict`; anything else is the `ApiError` `build_error` picks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from ._classify import build_error, classify
from ._errors import (
    AlreadyRedeemed,
    ApiError,
    BudgetExhausted,
    ConfigurationError,
    IdempotencyConflict,
    RedemptionError,
    RetryAfterTooLong,
    TokenRejected,
    UserCapReached,
)
from ._models import ErrorCategory
from ._parse import parse_error_payload
from ._retry_after import parse_retry_after
from ._token_spec import Compensation
from ._version import __version__

__all__ = [
    "AsyncRedemptionClient",
    "PendingCompensation",
    "Redemption",
    "RedemptionClient",
    "RedemptionGrant",
    "UserCompensations",
]

MAX_RESPONSE_BYTES = 1024 * 1024
_TRANSIENT_STATUS = frozenset({429, 502, 503, 504})
_CODE_CLASSES: dict[str, type[RedemptionError]] = {
    "TOKEN_ALREADY_REDEEMED": AlreadyRedeemed,
    "BUDGET_EXHAUSTED": BudgetExhausted,
    "INVENTORY_EXHAUSTED": BudgetExhausted,
    "USER_CAP_REACHED": UserCapReached,
    "IDEMPOTENCY_KEY_IN_FLIGHT": IdempotencyConflict,
    "IDEMPOTENCY_KEY_REUSED": IdempotencyConflict,
    "IDEMPOTENCY_KEY_INVALID": IdempotencyConflict,
}


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("timestamp must be a string")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a time zone")
    return moment


def _compensation(value: Any) -> Compensation:
    if not isinstance(value, Mapping):
        raise ValueError("compensation must be an object")
    amount = value["amount"]
    if not isinstance(value["kind"], str) or not isinstance(value["unit"], str):
        raise ValueError("compensation kind and unit are strings")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise ValueError("compensation amount is a number")
    return Compensation(value["kind"], amount, value["unit"])


@attrs.frozen
class RedemptionGrant:
    """What a redemption gave; the members that apply to ``kind`` are set.

    ``coupon_code`` (coupon; None when the server has no code pool), ``points``,
    ``days`` (extensions, retry chances), ``amount``/``unit`` (credits, coupons),
    ``count`` (retry chances).
    """

    kind: str
    coupon_code: str | None = None
    points: int | float | None = None
    days: int | float | None = None
    amount: int | float | None = None
    unit: str | None = None
    count: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> RedemptionGrant:
        if not isinstance(value, Mapping) or not isinstance(value.get("kind"), str):
            raise ValueError("grant must be an object with a kind")
        known = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in known})


@attrs.frozen
class Redemption:
    """A redeemed token, as the server reports it."""

    id: str
    jti: str
    subject: str
    compensation: Compensation
    grant: RedemptionGrant
    redeemed_at: datetime
    reversed_at: datetime | None = None

    @classmethod
    def from_json(cls, value: Any) -> Redemption:
        if not isinstance(value, Mapping):
            raise ValueError("redemption must be an object")
        for name in ("id", "jti", "subject"):
            if not isinstance(value.get(name), str):
                raise ValueError(f"{name} must be a string")
        reversed_at = value.get("reversed_at")
        return cls(
            id=value["id"],
            jti=value["jti"],
            subject=value["subject"],
            compensation=_compensation(value.get("compensation")),
            grant=RedemptionGrant.from_json(value.get("grant")),
            redeemed_at=_time(value.get("redeemed_at")),
            reversed_at=None if reversed_at is None else _time(reversed_at),
        )


@attrs.frozen
class PendingCompensation:
    """An issued, unredeemed, unexpired token of a subject (the "at next login" reminder)."""

    jti: str
    alert_id: str
    alert_url: str | None
    compensation: Compensation
    expires_at: datetime


@attrs.frozen
class UserCompensations:
    """What a subject redeemed (newest first) and still has pending."""

    subject: str
    redeemed: tuple[Redemption, ...]
    pending: tuple[PendingCompensation, ...]

    @classmethod
    def from_json(cls, value: Any) -> UserCompensations:
        if not isinstance(value, Mapping) or not isinstance(value.get("subject"), str):
            raise ValueError("compensations must be an object with a subject")
        pending = tuple(
            PendingCompensation(
                jti=str(item["jti"]),
                alert_id=str(item["alert_id"]),
                alert_url=item.get("alert_url"),
                compensation=_compensation(item["compensation"]),
                expires_at=_time(item["expires_at"]),
            )
            for item in value.get("pending", [])
        )
        return cls(
            subject=value["subject"],
            redeemed=tuple(Redemption.from_json(r) for r in value.get("redeemed", [])),
            pending=pending,
        )


class _Core:
    """What both clients share: URLs, headers, response interpretation, retry rules."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        retry: int,
        max_retry_wait: float,
        backoff: float,
    ) -> None:
        if not str(base_url).startswith(("http://", "https://")):
            raise ConfigurationError("base_url must be an http(s) URL")
        if not 1 <= retry <= 10:
            raise ConfigurationError("retry (attempts) must be between 1 and 10")
        if max_retry_wait < 0 or backoff < 0:
            raise ConfigurationError("max_retry_wait and backoff must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.attempts = retry
        self.max_retry_wait = max_retry_wait
        self.backoff = backoff
        self.headers = {"User-Agent": f"errdiscount/{__version__}", "Accept": "application/json"}
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:  # never the API key
        return f"{type(self).__name__}({self.base_url!r})"

    @staticmethod
    def redeem_args(
        token: object, idempotency_key: str | None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        if not isinstance(token, str) or not token:
            raise ConfigurationError("token must be a non-empty string")
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        if not 0 < len(key) <= 255 or not all(" " <= c <= "~" for c in key):
            raise ConfigurationError("idempotency_key must be 1-255 printable ASCII characters")
        return {"token": token}, {"Idempotency-Key": key}

    @staticmethod
    def path(*segments: str) -> str:
        return "/".join(quote(s, safe="") for s in segments)

    def wait_before_retry(
        self, outcome: httpx.Response | BaseException, attempt: int
    ) -> float | None:
        """Seconds to wait before another attempt, or None to stop here."""
        if attempt >= self.attempts:
            return None
        if isinstance(outcome, BaseException):
            return float(self.backoff * 2 ** (attempt - 1))
        status = outcome.status_code
        in_flight = status == 409 and _code(outcome) == "IDEMPOTENCY_KEY_IN_FLIGHT"
        if status not in _TRANSIENT_STATUS and not in_flight:
            return None
        asked = parse_retry_after(outcome.headers.get("retry-after"))
        return float(self.backoff * 2 ** (attempt - 1)) if asked is None else asked

    def too_long(self, response: httpx.Response, wait: float, attempt: int) -> ApiError | None:
        if wait <= self.max_retry_wait:
            return None
        error = self.error(response, attempt)
        return RetryAfterTooLong(error, wait, self.max_retry_wait)

    def error(self, response: httpx.Response, attempts: int) -> ApiError:
        payload = parse_error_payload(
            response.content,
            content_type=response.headers.get("content-type"),
            status=response.status_code,
        )
        code = payload.error_code if payload is not None else None
        cls = _CODE_CLASSES.get(code or "")
        if cls is None and code and code.startswith("TOKEN_") and response.status_code < 500:
            cls = TokenRejected
        if cls is None:
            return build_error(response, payload=payload, attempts=attempts)
        base = classify(response, payload=payload)
        in_flight = code == "IDEMPOTENCY_KEY_IN_FLIGHT"
        classification = attrs.evolve(
            base,
            category=ErrorCategory.BUSINESS,
            transient=in_flight,
            retryable=in_flight,
            error_type=(code or "business_error").lower(),
        )
        return cls(
            base.description + f"; the server says: {code}: {payload.message if payload else ''}",
            classification=classification,
            request=response.request,
            response=response,
            payload=payload,
            attempts=attempts,
        )

    def parse(self, response: httpx.Response, attempts: int, model: Any) -> Any:
        try:
            if len(response.content) > MAX_RESPONSE_BYTES:
                raise ValueError("response too large")
            return model.from_json(response.json())
        except (ValueError, KeyError, TypeError):
            raise build_error(response, invalid_body=True, attempts=attempts) from None


def _code(response: httpx.Response) -> str | None:
    payload = parse_error_payload(
        response.content, content_type=response.headers.get("content-type")
    )
    return payload.error_code if payload is not None else None


class RedemptionClient:
    """Synchronous client of a redemption server (errdiscount-server).

    Args:
        base_url: the server, e.g. ``https://redeem.example.com``.
        api_key: app or admin key for `get` and `compensations` (redeeming needs none).
        retry: attempts at most, including the first (1 disables retries).
        timeout: seconds per attempt (connect, read, write, pool).
        max_retry_wait: longest Retry-After honoured; longer raises `RetryAfterTooLong`.
        backoff: first wait when the server names none (doubles per attempt).
        transport: an httpx transport (tests, proxies).

    Raises:
        ConfigurationError: bad arguments.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        retry: int = 3,
        timeout: float = 10.0,
        max_retry_wait: float = 10.0,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _Core(base_url, api_key, retry, max_retry_wait, backoff)
        self._http = httpx.Client(
            base_url=self._core.base_url,
            headers=self._core.headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return repr(self._core)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RedemptionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                wait = self._core.wait_before_retry(exc, attempt)
                if wait is None:
                    raise build_error(exc, attempts=attempt) from exc
                time.sleep(wait)
                continue
            if response.is_success:
                return response, attempt
            wait = self._core.wait_before_retry(response, attempt)
            if wait is None:
                raise self._core.error(response, attempt)
            too_long = self._core.too_long(response, wait, attempt)
            if too_long is not None:
                raise too_long
            time.sleep(wait)

    def redeem(self, token: str, *, idempotency_key: str | None = None) -> Redemption:
        """Redeem ``token``; the grant goes to the token's subject.

        Raises:
            TokenRejected, AlreadyRedeemed, BudgetExhausted, UserCapReached,
            IdempotencyConflict: the server refused; other `ApiError` subclasses for
            network, protocol and data-format failures.
        """
        body, headers = self._core.redeem_args(token, idempotency_key)
        response, attempts = self._send("POST", "/v1/redemptions", json=body, headers=headers)
        result: Redemption = self._core.parse(response, attempts, Redemption)
        return result

    def get(self, redemption_id: str) -> Redemption:
        """A redemption by id (needs ``api_key``); `NotFound` if unknown."""
        url = "/v1/redemptions/" + self._core.path(redemption_id)
        response, attempts = self._send("GET", url)
        result: Redemption = self._core.parse(response, attempts, Redemption)
        return result

    def compensations(self, subject: str) -> UserCompensations:
        """Redeemed and pending compensations of ``subject`` (needs ``api_key``)."""
        url = f"/v1/users/{self._core.path(subject)}/compensations"
        response, attempts = self._send("GET", url)
        result: UserCompensations = self._core.parse(response, attempts, UserCompensations)
        return result


class AsyncRedemptionClient:
    """The asyncio twin of `RedemptionClient` (same arguments, same errors)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        retry: int = 3,
        timeout: float = 10.0,
        max_retry_wait: float = 10.0,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _Core(base_url, api_key, retry, max_retry_wait, backoff)
        self._http = httpx.AsyncClient(
            base_url=self._core.base_url,
            headers=self._core.headers,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return repr(self._core)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRedemptionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, int]:
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                wait = self._core.wait_before_retry(exc, attempt)
                if wait is None:
                    raise build_error(exc, attempts=attempt) from exc
                await asyncio.sleep(wait)
                continue
            if response.is_success:
                return response, attempt
            wait = self._core.wait_before_retry(response, attempt)
            if wait is None:
                raise self._core.error(response, attempt)
            too_long = self._core.too_long(response, wait, attempt)
            if too_long is not None:
                raise too_long
            await asyncio.sleep(wait)

    async def redeem(self, token: str, *, idempotency_key: str | None = None) -> Redemption:
        """See `RedemptionClient.redeem`."""
        body, headers = self._core.redeem_args(token, idempotency_key)
        response, attempts = await self._send("POST", "/v1/redemptions", json=body, headers=headers)
        result: Redemption = self._core.parse(response, attempts, Redemption)
        return result

    async def get(self, redemption_id: str) -> Redemption:
        """See `RedemptionClient.get`."""
        url = "/v1/redemptions/" + self._core.path(redemption_id)
        response, attempts = await self._send("GET", url)
        result: Redemption = self._core.parse(response, attempts, Redemption)
        return result

    async def compensations(self, subject: str) -> UserCompensations:
        """See `RedemptionClient.compensations`."""
        url = f"/v1/users/{self._core.path(subject)}/compensations"
        response, attempts = await self._send("GET", url)
        result: UserCompensations = self._core.parse(response, attempts, UserCompensations)
        return result
