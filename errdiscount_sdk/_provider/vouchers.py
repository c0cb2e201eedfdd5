"""Where the middleware's discount tokens come from: signed here, or issued by the server.

- `LocalVouchers`: a `TokenIssuer` signs in-process. Offline and fast, but the voucher is
  not recorded anywhere, so there is no alert page: no ``alert_url``.
- `ServerVouchers`: the redemption server issues it (``POST /v1/tokens`` with the admin
  key), records it and answers with its ``alert_url``. One network call per compensated
  error, with a short timeout and no retry (issuing twice would mint two vouchers).

Either way a failure to obtain a token never fails the answer: it goes out without one,
and the failure is logged (never the token, never the key).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from .._model.errors import ErrDiscountError
from .._tokens.issuer import TokenIssuer
from .._tokens.spec import Compensation

__all__ = [
    "AsyncIssuingClient",
    "Issued",
    "IssuingClient",
    "LocalVouchers",
    "ServerVouchers",
    "Voucher",
    "VoucherRequest",
    "VoucherSource",
]

_log = logging.getLogger("errdiscount_sdk.provider")


@attrs.frozen
class VoucherRequest:
    """What to compensate, for whom: decided by the `CompensationPolicy`."""

    subject: str
    error_code: str
    category: str
    severity: str
    transient: bool
    compensation: Compensation
    ttl: dt.timedelta
    segment: str | None = None
    messages: Mapping[str, str] = attrs.field(factory=dict)
    suggestions: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Voucher:
    """A token for the answer, and the alert page the server made for it (or None)."""

    token: str = attrs.field(repr=False)
    alert_url: str | None = None


class VoucherSource(Protocol):
    """Obtains a voucher; None when it could not (the answer then goes out without one)."""

    def issue(self, request: VoucherRequest) -> Voucher | None: ...

    async def aissue(self, request: VoucherRequest) -> Voucher | None: ...


class LocalVouchers:
    """Signs vouchers in-process with a `TokenIssuer` (no alert_url: nothing records them)."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer

    def issue(self, request: VoucherRequest) -> Voucher | None:
        try:
            token = self.issuer.issue(
                subject=request.subject,
                error_code=request.error_code,
                category=request.category,
                severity=request.severity,
                compensation=request.compensation,
                ttl=request.ttl,
                segment=request.segment,
            )
        except ErrDiscountError as exc:
            _log.warning("could not sign a voucher for %s: %s", request.error_code, exc)
            return None
        return Voucher(token)

    async def aissue(self, request: VoucherRequest) -> Voucher | None:
        # Signing is CPU-bound and short (EdDSA ~0.1 ms); a thread hop would cost more.
        return self.issue(request)

    def __repr__(self) -> str:
        return f"LocalVouchers({self.issuer!r})"


class Issued(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def alert_url(self) -> str: ...


class IssuingClient(Protocol):
    """A client of ``POST /v1/tokens`` taking the `VoucherRequest` fields (`TokenIssuingClient`)."""

    def issue(self, **fields: Any) -> Issued: ...


class AsyncIssuingClient(Protocol):
    async def issue(self, **fields: Any) -> Issued: ...


class ServerVouchers:
    """Asks the redemption server to issue (and record) each voucher, with an alert page.

    The request carries the compensation the provider's policy decided (as the override),
    so the server mints exactly what the middleware's policy said, and the provider's
    texts per language for the alert popup.
    """

    def __init__(self, sync_client: IssuingClient, async_client: AsyncIssuingClient) -> None:
        self._sync = sync_client
        self._async = async_client

    def issue(self, request: VoucherRequest) -> Voucher | None:
        try:
            issued = self._sync.issue(**_fields(request))
        except ErrDiscountError as exc:
            _log.warning("the redemption server did not issue a voucher: %s", exc)
            return None
        return Voucher(issued.token, issued.alert_url)

    async def aissue(self, request: VoucherRequest) -> Voucher | None:
        try:
            issued = await self._async.issue(**_fields(request))
        except ErrDiscountError as exc:
            _log.warning("the redemption server did not issue a voucher: %s", exc)
            return None
        return Voucher(issued.token, issued.alert_url)

    def __repr__(self) -> str:
        return f"ServerVouchers({self._sync!r})"


def _fields(request: VoucherRequest) -> dict[str, Any]:
    return {field.name: getattr(request, field.name) for field in attrs.fields(VoucherRequest)}
