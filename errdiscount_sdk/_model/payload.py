"""`ErrorPayload`: every structured error-body shape, normalised into one typed object."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

__all__ = ["ErrorPayload", "SourceFormat"]

SourceFormat = str
"""One of ``"flat"``, ``"problem"``, ``"google"``, ``"microsoft"``, ``"stripe"``,
``"envelope"`` (another ``{"error": {...}}`` body or a named envelope), ``"oauth"``,
``"generic"`` (the common flat families), ``"xml"`` (an XML error document)."""


def _freeze(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(repr=False)
class ErrorPayload:
    """A structured error body, whatever shape it came in.

    Attributes:
        error_code: the provider's stable machine code (``PAY_001``, Google's
            ``ErrorInfo.reason``, Stripe/Microsoft ``code``, RFC 9457 ``type``).
        message: the human-readable message (``message``, ``detail``, ...).
        suggestion: what the user can do about it, when the server says.
        discount_token: the compensation voucher (compact JWS) — opaque here.
        alert_url: the raw alert URL as sent; check it with `AlertUrlPolicy`.
        status: the HTTP status of the response (authoritative), else the
            body's own status member.
        source_format: which wire shape was recognised (see `SourceFormat`).
        title: RFC 9457 ``title`` or similar short summary.
        type_uri: RFC 9457 ``type`` when present.
        instance: RFC 9457 ``instance`` when present.
        retry_after: seconds a body-level retry hint asks for (Google ``RetryInfo``).
        help_url: a documentation link (Stripe ``doc_url``, Google ``Help.links``).
        localized_message: a user-safe localised message (Google ``LocalizedMessage``).
        target: the field or parameter concerned (Stripe ``param``, Microsoft ``target``).
        category: the category the provider states (``category`` member: ``"business"``,
            ``"data_format"``, ``"protocol"`` or ``"network"``), which `classify`
            honours on a 4xx; None when the body does not say (or says something else).
        extensions: every member not mapped above, kept as sent (read-only).
    """

    error_code: str | None = None
    message: str | None = None
    suggestion: str | None = None
    discount_token: str | None = None
    alert_url: str | None = None
    status: int | None = None
    source_format: SourceFormat = "flat"
    title: str | None = None
    type_uri: str | None = None
    instance: str | None = None
    retry_after: float | None = None
    help_url: str | None = None
    localized_message: str | None = None
    target: str | None = None
    category: str | None = None
    extensions: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)

    def __repr__(self) -> str:
        # The discount token is a bearer credential: never print it whole.
        token = None if self.discount_token is None else f"<{len(self.discount_token)} chars>"
        return (
            f"ErrorPayload(error_code={self.error_code!r}, message={self.message!r}, "
            f"status={self.status!r}, source_format={self.source_format!r}, "
            f"discount_token={token}, alert_url={self.alert_url!r})"
        )
