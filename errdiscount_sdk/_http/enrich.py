"""What a client learns from a final error's payload before handing the error out.

The verdicts are computed first (`findings_for` / `afindings_for`), then the
final error is built once with them (``error.evolve(**findings.error_fields())``):
nothing is written into an error after it exists.

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

import attrs

from .._model.alert_url import AlertUrlPolicy
from .._model.errors import TokenError, UnsafeAlertUrl
from .._model.payload import ErrorPayload
from .hooks import logger

__all__ = ["Findings", "SupportsVerify", "afindings_for", "findings_for"]


class SupportsVerify(Protocol):
    """Anything with a ``verify(token)`` method: a `TokenVerifier` in practice.

    ``verify`` returns the verified token object (or, for `AsyncClient`, an
    awaitable of it) and raises `TokenError` when the token is refused.
    """

    def verify(self, token: str) -> Any: ...


@attrs.frozen
class Findings:
    """The verdicts on a payload's discount token and alert URL.

    Attributes:
        discount: the verified token, or None.
        discount_rejection: why the token was not verified, or None.
        offered_discount: what ``on_discount`` receives (the verified token, the
            raw token without a verifier), or None: no call.
        alert_url: the allowed alert URL (what ``on_alert`` receives), or None.
        alert_url_rejection: why the alert URL was refused, or None.
    """

    discount: Any = None
    discount_rejection: TokenError | None = None
    offered_discount: Any = None
    alert_url: str | None = None
    alert_url_rejection: UnsafeAlertUrl | None = None

    def error_fields(self) -> dict[str, Any]:
        """The `ApiError` constructor arguments these findings fill."""
        return {
            "discount": self.discount,
            "discount_rejection": self.discount_rejection,
            "alert_url": self.alert_url,
            "alert_url_rejection": self.alert_url_rejection,
        }


_NOTHING = Findings()


def _alert_verdict(
    url: str | None, policy: AlertUrlPolicy | None, error_type: str
) -> tuple[str | None, UnsafeAlertUrl | None]:
    if url is None:
        return None, None
    try:
        if policy is None:
            raise UnsafeAlertUrl(url, "no_policy")
        policy.check(url)
    except UnsafeAlertUrl as rejection:
        logger.warning(
            "alert_url refused (%s) on %s; not handed to on_alert", rejection.reason, error_type
        )
        return None, rejection
    return url, None


def _refusal(exc: Exception, error_type: str) -> TokenError:
    if isinstance(exc, TokenError):
        logger.info("discount token refused (%s) on %s", exc.reason, error_type)
        return exc
    # A verifier bug must not break the call nor hand out an unverified voucher.
    logger.error(
        "token verifier raised %s on %s; token treated as unverified",
        type(exc).__name__,
        error_type,
    )
    return TokenError("the token verifier failed unexpectedly")


def _build(
    payload: ErrorPayload,
    policy: AlertUrlPolicy | None,
    error_type: str,
    *,
    token: str | None,
    verified: Any,
    refused: Exception | None,
    verifying: bool,
) -> Findings:
    url, url_rejection = _alert_verdict(payload.alert_url, policy, error_type)
    if token is None:
        return Findings(alert_url=url, alert_url_rejection=url_rejection)
    if not verifying:
        return Findings(offered_discount=token, alert_url=url, alert_url_rejection=url_rejection)
    if refused is not None:
        return Findings(
            discount_rejection=_refusal(refused, error_type),
            alert_url=url,
            alert_url_rejection=url_rejection,
        )
    return Findings(
        discount=verified,
        offered_discount=verified,
        alert_url=url,
        alert_url_rejection=url_rejection,
    )


def findings_for(
    payload: ErrorPayload | None,
    verifier: SupportsVerify | None,
    policy: AlertUrlPolicy | None,
    error_type: str,
) -> Findings:
    """The verdicts for a sync client (an awaitable from ``verify`` is a refusal)."""
    if payload is None:
        return _NOTHING
    token = payload.discount_token
    verified: Any = None
    refused: Exception | None = None
    if token is not None and verifier is not None:
        try:
            verified = verifier.verify(token)
            if inspect.isawaitable(verified):
                close = getattr(verified, "close", None)
                if callable(close):
                    close()
                raise TypeError("an async verifier needs AsyncClient")
        except Exception as exc:
            refused = exc
    return _build(
        payload,
        policy,
        error_type,
        token=token,
        verified=verified,
        refused=refused,
        verifying=verifier is not None,
    )


async def afindings_for(
    payload: ErrorPayload | None,
    verifier: SupportsVerify | None,
    policy: AlertUrlPolicy | None,
    error_type: str,
) -> Findings:
    """`findings_for` for `AsyncClient`: ``verify`` may also be a coroutine function."""
    if payload is None:
        return _NOTHING
    token = payload.discount_token
    verified: Any = None
    refused: Exception | None = None
    if token is not None and verifier is not None:
        try:
            verified = verifier.verify(token)
            if inspect.isawaitable(verified):
                verified = await verified
        except Exception as exc:
            refused = exc
    return _build(
        payload,
        policy,
        error_type,
        token=token,
        verified=verified,
        refused=refused,
        verifying=verifier is not None,
    )
