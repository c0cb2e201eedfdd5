"""`RedemptionClient` and `AsyncRedemptionClient`: redeem discount tokens at a server.

The value classes they return (`Redemption`, ...) live in `errdiscount_sdk._redeem.models`.

Both are built on `Client` / `AsyncClient`: the same transport glue, `RetryPolicy`
(backoff, ``Retry-After``, deadline, `RetryBudget`), ``on_retry`` hook and
`errdiscount_sdk.testing.disable_backoff` switch apply to redemptions. Redeeming is
safe to retry because every attempt of one `redeem` call carries the same
``Idempotency-Key`` (generated once per call unless given): the server replays the
first outcome instead of redeeming twice.

Server refusals map to the typed errors of the tree, inside the retry loop (so
the policy sees them): TOKEN_* (4xx) → `TokenRejected`, TOKEN_ALREADY_REDEEMED →
`AlreadyRedeemed`, BUDGET_EXHAUSTED / INVENTORY_EXHAUSTED → `BudgetExhausted`,
USER_CAP_REACHED → `UserCapReached`, IDEMPOTENCY_KEY_* → `IdempotencyConflict`.
Only IDEMPOTENCY_KEY_IN_FLIGHT among them is transient (an earlier attempt with
the key is still running; retrying returns its result). Anything else is the
`ApiError` the generic classification picks (503 STORE_BUSY → `ServiceUnavailable`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from .._http.async_client import AsyncClient
from .._http.client import Client, RetryArg
from .._http.hooks import RetryHook
from .._http.retry import RetryPolicy, is_safe_to_resend
from .._http.sentinel import USE_CLIENT_DEFAULT
from .._http.transport import TimeoutTypes, check_idempotency_key, new_idempotency_key
from .._model.enums import ErrorCategory
from .._model.errors import (
    AlreadyRedeemed,
    ApiError,
    BudgetExhausted,
    ConfigurationError,
    IdempotencyConflict,
    RedemptionError,
    TokenRejected,
    UserCapReached,
)
from .._model.wire import RedemptionCode
from .._version import __version__
from .models import PendingCompensation, Redemption, RedemptionGrant, UserCompensations

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AsyncRedemptionClient",
    "PendingCompensation",
    "Redemption",
    "RedemptionClient",
    "RedemptionGrant",
    "UserCompensations",
    "redemption_error",
]

MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_REDEEM_TIMEOUT = 10.0
_CODE_CLASSES: dict[str, type[RedemptionError]] = {
    RedemptionCode.ALREADY_REDEEMED: AlreadyRedeemed,
    RedemptionCode.BUDGET_EXHAUSTED: BudgetExhausted,
    RedemptionCode.INVENTORY_EXHAUSTED: BudgetExhausted,
    RedemptionCode.USER_CAP_REACHED: UserCapReached,
    RedemptionCode.IDEMPOTENCY_KEY_IN_FLIGHT: IdempotencyConflict,
    RedemptionCode.IDEMPOTENCY_KEY_REUSED: IdempotencyConflict,
    RedemptionCode.IDEMPOTENCY_KEY_INVALID: IdempotencyConflict,
}
_IN_FLIGHT = RedemptionCode.IDEMPOTENCY_KEY_IN_FLIGHT

M = TypeVar("M")


def redemption_error(error: ApiError) -> ApiError:
    """The typed `RedemptionError` for a server refusal; ``error`` itself otherwise.

    Category BUSINESS; severity, request, response, payload, ``retry_after``
    and attempts are kept. Only IDEMPOTENCY_KEY_IN_FLIGHT is transient.
    """
    payload, response = error.payload, error.response
    if payload is None or response is None or not payload.error_code:
        return error
    code = payload.error_code
    cls = _CODE_CLASSES.get(code)
    if cls is None and code.startswith("TOKEN_") and response.status_code < 500:
        cls = TokenRejected
    if cls is None:
        return error
    in_flight = code == _IN_FLIGHT
    status = response.status_code
    description = (
        f"An earlier attempt with the same Idempotency-Key is still in progress (HTTP {status})"
        if in_flight
        else f"The redemption server refused the token (HTTP {status})"
    )
    classification = attrs.evolve(
        error.classification,
        category=ErrorCategory.BUSINESS,
        transient=in_flight,
        retryable=in_flight and is_safe_to_resend(error),
        error_type=code.lower(),
        description=description,
    )
    message = f"{description}; the server says: {code}"
    if payload.message:
        message += f": {payload.message}"
    return cls(
        message,
        classification=classification,
        request=error.request,
        response=response,
        payload=payload,
        attempts=error.attempts,
    )


class _Parsed:
    """The success-body validator of one call: parses into ``model`` and keeps it."""

    __slots__ = ("model", "value")

    def __init__(self, model: Any) -> None:
        self.model = model
        self.value: Any = None

    def __call__(self, data: Any) -> None:
        # ValueError/KeyError/TypeError here make the call fail with InvalidResponseBody.
        self.value = self.model.from_json(data)


class _RedeemHttp(Client):
    def _refine_error(self, error: ApiError) -> ApiError:
        return redemption_error(error)


class _AsyncRedeemHttp(AsyncClient):
    def _refine_error(self, error: ApiError) -> ApiError:
        return redemption_error(error)


class _Core:
    """What both clients share: URLs, headers, argument checks."""

    def __init__(self, base_url: object, api_key: str | None) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url must be an http(s) URL")
        if api_key is not None and not api_key:
            raise ConfigurationError("api_key must be a non-empty string or None")
        self.base_url = base_url.rstrip("/")
        self.headers = {"User-Agent": f"errdiscount/{__version__}", "Accept": "application/json"}
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        # Never the API key, nor userinfo or a query string of the URL.
        parts = urlsplit(self.base_url)
        host = parts.netloc.rpartition("@")[2]
        return repr(urlunsplit((parts.scheme, host, parts.path, "", "")))

    def url(self, *segments: str) -> str:
        return self.base_url + "/" + "/".join(quote(s, safe="") for s in segments)

    @staticmethod
    def redeem_args(token: object, idempotency_key: object) -> tuple[dict[str, Any], str]:
        if not isinstance(token, str) or not token:
            raise ConfigurationError("token must be a non-empty string")
        key = new_idempotency_key() if idempotency_key is None else idempotency_key
        return {"token": token}, check_idempotency_key(key)


class RedemptionClient:
    """Synchronous client of a redemption server (errdiscount-server).

    Args:
        base_url: the server, e.g. ``https://redeem.example.com``.
        api_key: app or admin key for `get` and `compensations` (redeeming needs none).
        retry: the `RetryPolicy` (default: a fresh ``RetryPolicy()``, 3 attempts,
            own `RetryBudget`); share one policy between clients to share its
            budget; None disables retries.
        timeout: seconds (or an ``httpx.Timeout``) per attempt; ignored with
            ``http_client`` (configure that client instead).
        transport: an httpx transport (tests, proxies).
        http_client: an httpx client you configured; not closed by this client.
        on_retry: ``on_retry(RetryDetails)`` before each retry's wait.

    Raises:
        ConfigurationError: bad arguments.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        retry: RetryArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes = DEFAULT_REDEEM_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self._core = _Core(base_url, api_key)
        self._client = _RedeemHttp(
            retry=retry,
            timeout=timeout,
            transport=transport,
            http_client=http_client,
            on_retry=on_retry,
            max_json_bytes=MAX_RESPONSE_BYTES,
        )

    @property
    def retry(self) -> RetryPolicy | None:
        """The `RetryPolicy` in force (its ``budget`` is this client's retry budget)."""
        return self._client.retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"

    def close(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        self._client.close()

    def __enter__(self) -> RedemptionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        parsed = _Parsed(model)
        self._client.request(method, url, headers=self._core.headers, validator=parsed, **kwargs)
        result: M = parsed.value
        return result

    def redeem(self, token: str, *, idempotency_key: str | None = None) -> Redemption:
        """Redeem ``token``; the grant goes to the token's subject.

        Args:
            token: the compact discount token.
            idempotency_key: reuse a key to retry a redemption across calls or
                processes (default: a fresh key per call, the same on every retry).

        Raises:
            TokenRejected, AlreadyRedeemed, BudgetExhausted, UserCapReached,
            IdempotencyConflict: the server refused; other `ApiError` subclasses for
            network, protocol and data-format failures (after the retries the
            policy allows); ConfigurationError: a bad token or key argument.
        """
        body, key = self._core.redeem_args(token, idempotency_key)
        return self._call(
            Redemption, "POST", self._core.url("v1", "redemptions"), json=body, idempotency_key=key
        )

    def get(self, redemption_id: str) -> Redemption:
        """A redemption by id (needs ``api_key``); `NotFound` if unknown."""
        return self._call(Redemption, "GET", self._core.url("v1", "redemptions", redemption_id))

    def compensations(self, subject: str) -> UserCompensations:
        """Redeemed and pending compensations of ``subject`` (needs ``api_key``)."""
        url = self._core.url("v1", "users", subject, "compensations")
        return self._call(UserCompensations, "GET", url)


class AsyncRedemptionClient:
    """The asyncio twin of `RedemptionClient` (same arguments, same errors).

    ``transport`` is an ``httpx.AsyncBaseTransport`` and ``http_client`` an
    ``httpx.AsyncClient``; ``on_retry`` may be a coroutine function.

    Raises:
        ConfigurationError: bad arguments.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        retry: RetryArg = USE_CLIENT_DEFAULT,
        timeout: TimeoutTypes = DEFAULT_REDEEM_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        self._core = _Core(base_url, api_key)
        self._client = _AsyncRedeemHttp(
            retry=retry,
            timeout=timeout,
            transport=transport,
            http_client=http_client,
            on_retry=on_retry,
            max_json_bytes=MAX_RESPONSE_BYTES,
        )

    @property
    def retry(self) -> RetryPolicy | None:
        """The `RetryPolicy` in force (its ``budget`` is this client's retry budget)."""
        return self._client.retry

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"

    async def aclose(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncRedemptionClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, model: type[M], method: str, url: str, **kwargs: Any) -> M:
        parsed = _Parsed(model)
        await self._client.request(
            method, url, headers=self._core.headers, validator=parsed, **kwargs
        )
        result: M = parsed.value
        return result

    async def redeem(self, token: str, *, idempotency_key: str | None = None) -> Redemption:
        """See `RedemptionClient.redeem`."""
        body, key = self._core.redeem_args(token, idempotency_key)
        return await self._call(
            Redemption, "POST", self._core.url("v1", "redemptions"), json=body, idempotency_key=key
        )

    async def get(self, redemption_id: str) -> Redemption:
        """See `RedemptionClient.get`."""
        return await self._call(
            Redemption, "GET", self._core.url("v1", "redemptions", redemption_id)
        )

    async def compensations(self, subject: str) -> UserCompensations:
        """See `RedemptionClient.compensations`."""
        url = self._core.url("v1", "users", subject, "compensations")
        return await self._call(UserCompensations, "GET", url)
