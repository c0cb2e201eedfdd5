"""Clients of the redemption server's ``POST /v1/tokens`` (admin): issue a recorded voucher.

The provider middleware uses them when it is pointed at a redemption server, so each
voucher it hands out is recorded by the server and gets an alert page (``alert_url``).
Built on the same `Client` / `AsyncClient` glue as `RedemptionClient`, but with **no
retry** by default: the endpoint mints a fresh voucher per call, so a retry after a lost
answer could mint two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._http.transport import TimeoutTypes
from .._tokens.spec import Compensation
from .client import MAX_RESPONSE_BYTES, _AsyncRedeemHttp, _Core, _Parsed, _RedeemHttp

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncTokenIssuingClient", "IssuedVoucher", "TokenIssuingClient"]

DEFAULT_ISSUE_TIMEOUT = 2.0
"""Seconds per call: the voucher is awaited inside a request that is already failing."""


@attrs.frozen
class IssuedVoucher:
    """The server's 201 answer: the token, its id, and its alert page."""

    token: str = attrs.field(repr=False)
    jti: str
    alert_id: str
    alert_url: str

    @classmethod
    def from_json(cls, value: Any) -> IssuedVoucher:
        if not isinstance(value, Mapping):
            raise ValueError("the issued token must be an object")
        for name in ("token", "jti", "alert_id", "alert_url"):
            if not isinstance(value.get(name), str):
                raise ValueError(f"{name} must be a string")
        return cls(value["token"], value["jti"], value["alert_id"], value["alert_url"])


def _body(
    *,
    subject: str,
    error_code: str,
    category: str,
    severity: str,
    transient: bool,
    compensation: Compensation,
    ttl: dt.timedelta,
    segment: str | None,
    messages: Mapping[str, str],
    suggestions: Mapping[str, str],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": subject,
        "error_code": error_code,
        "category": category,
        "severity": severity,
        "transient": transient,
        "compensation": compensation.to_claim(),
        "ttl": max(1, int(ttl.total_seconds())),
    }
    if segment is not None:
        body["segment"] = segment
    if messages:
        body["message"] = dict(messages)
    if suggestions:
        body["suggestion"] = dict(suggestions)
    return body


class TokenIssuingClient:
    """Issues vouchers at a redemption server with its admin key (synchronous).

    Args:
        base_url: the server, e.g. ``https://redeem.example.com``.
        admin_key: the server's admin key (sent as ``Authorization: Bearer``).
        timeout: seconds per call (default 2).
        transport: an httpx transport (tests, proxies).

    Raises:
        ConfigurationError: bad arguments.
    """

    def __init__(
        self,
        base_url: str,
        *,
        admin_key: str,
        timeout: TimeoutTypes = DEFAULT_ISSUE_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = _Core(base_url, admin_key)
        self._client = _RedeemHttp(
            retry=None, timeout=timeout, transport=transport, max_json_bytes=MAX_RESPONSE_BYTES
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"

    def close(self) -> None:
        self._client.close()

    def issue(self, **fields: Any) -> IssuedVoucher:
        """``POST /v1/tokens`` with the `VoucherRequest` fields; the recorded voucher.

        Raises:
            ApiError: the server refused (e.g. 422 ``NOT_COMPENSABLE``) or did not answer.
        """
        parsed = _Parsed(IssuedVoucher)
        self._client.request(
            "POST",
            self._core.url("v1", "tokens"),
            headers=self._core.headers,
            json=_body(**fields),
            validator=parsed,
        )
        result: IssuedVoucher = parsed.value
        return result


class AsyncTokenIssuingClient:
    """The asyncio twin of `TokenIssuingClient` (same arguments, same errors)."""

    def __init__(
        self,
        base_url: str,
        *,
        admin_key: str,
        timeout: TimeoutTypes = DEFAULT_ISSUE_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = _Core(base_url, admin_key)
        self._client = _AsyncRedeemHttp(
            retry=None, timeout=timeout, transport=transport, max_json_bytes=MAX_RESPONSE_BYTES
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._core!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def issue(self, **fields: Any) -> IssuedVoucher:
        """See `TokenIssuingClient.issue`."""
        parsed = _Parsed(IssuedVoucher)
        await self._client.request(
            "POST",
            self._core.url("v1", "tokens"),
            headers=self._core.headers,
            json=_body(**fields),
            validator=parsed,
        )
        result: IssuedVoucher = parsed.value
        return result
