"""What a client learns from a final error's payload before handing it out.

Policy:
- ``alert_url``: kept on the error (``error.alert_url``) and offered to
  ``on_alert`` only when the client's `AlertUrlPolicy` allows it. A refused
  URL (or any URL when the client has no policy: allow-list semantics) is
  recorded as ``error.alert_url_rejection`` and logged with its reason; never
  raised.
- ``discount_token``: with a verifier, the token is verified; a verified
  `DiscountToken` goes to ``error.discount`` and ``on_discount``, a refused one
  leaves ``discount`` None and the `TokenError` in ``discount_rejection`` (and
  ``on_discount`` is not called: an unverified voucher is not handed out as
  one). Without a verifier, ``on_discount`` receives the raw token string.
- Tokens are bearer credentials: never logged, in part or whole.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from .._model.alert_url import AlertUrlPolicy
from .._model.errors import ApiError, TokenError, UnsafeAlertUrl
from .hooks import logger

__all__ = ["SupportsVerify", "adiscount_for", "alert_url_for", "discount_for"]


class SupportsVerify(Protocol):
    """Anything with a ``verify(token)`` method: a `TokenVerifier` in practice.

    ``verify`` returns the verified token object (or, for `AsyncClient`, an
    awaitable of it) and raises `TokenError` when the token is refused.
    """

    def verify(self, token: str) -> Any: ...


def alert_url_for(error: ApiError, policy: AlertUrlPolicy | None) -> str | None:
    """Check the payload's alert URL; return it if allowed (and record the verdict)."""
    url = error.payload.alert_url if error.payload is not None else None
    if url is None:
        return None
    try:
        if policy is None:
            raise UnsafeAlertUrl(url, "no_policy")
        policy.check(url)
    except UnsafeAlertUrl as rejection:
        error.alert_url_rejection = rejection
        logger.warning(
            "alert_url refused (%s) on %s; not handed to on_alert",
            rejection.reason,
            error.error_type,
        )
        return None
    error.alert_url = url
    return url


def _token_of(error: ApiError) -> str | None:
    return error.payload.discount_token if error.payload is not None else None


def _refused(error: ApiError, exc: Exception) -> None:
    if isinstance(exc, TokenError):
        error.discount_rejection = exc
        logger.info("discount token refused (%s) on %s", exc.reason, error.error_type)
    else:
        # A verifier bug must not break the call nor hand out an unverified voucher.
        error.discount_rejection = TokenError("the token verifier failed unexpectedly")
        logger.error(
            "token verifier raised %s on %s; token treated as unverified",
            type(exc).__name__,
            error.error_type,
        )


def discount_for(error: ApiError, verifier: SupportsVerify | None) -> object | None:
    """What ``on_discount`` gets: the verified token, the raw token without a verifier, or None."""
    token = _token_of(error)
    if token is None:
        return None
    if verifier is None:
        return token
    try:
        verified: object = verifier.verify(token)
        if inspect.isawaitable(verified):
            close = getattr(verified, "close", None)
            if callable(close):
                close()
            raise TypeError("an async verifier needs AsyncClient")
    except Exception as exc:
        _refused(error, exc)
        return None
    error.discount = verified
    return verified


async def adiscount_for(error: ApiError, verifier: SupportsVerify | None) -> object | None:
    """`discount_for` for `AsyncClient`: ``verify`` may also be a coroutine function."""
    token = _token_of(error)
    if token is None:
        return None
    if verifier is None:
        return token
    try:
        verified: object = verifier.verify(token)
        if inspect.isawaitable(verified):
            verified = await verified
    except Exception as exc:
        _refused(error, exc)
        return None
    error.discount = verified
    return verified
