"""`parse_error_payload`: sniff the wire shape of an error body, then normalise it.

Policy (RFC 9457 §3.1 and AIP-193 alike): members of the wrong type are
ignored, unknown members are kept in ``extensions``, the HTTP status is
authoritative, and nothing here ever raises or hangs: the body is capped
before it is decoded, JSON nesting is bounded, and strings are truncated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .payload import ErrorPayload
from .shapes import Fields, recognise_document
from .wire import MAX_TOKEN_BYTES

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "MAX_STRING_CHARS", "parse_error_payload"]

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_STRING_CHARS = 4096
# A discount token is a compact JWS capped at 8 KiB by the token spec.
MAX_TOKEN_CHARS = MAX_TOKEN_BYTES

_JSON_MEDIA_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$|^text/json$")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def parse_error_payload(
    body: bytes | str | Mapping[str, Any] | None,
    *,
    content_type: str | None = None,
    status: int | None = None,
) -> ErrorPayload | None:
    """Parse a structured error body into one `ErrorPayload`, whatever its shape.

    Recognised shapes: the flat seed shape (``error_code``, ``message``,
    ``suggestion``, ``discount_token``, ``alert_url``); RFC 9457 problem
    details (our fields as extension members); the ``{"error": {...}}``
    envelopes of Google (AIP-193), Microsoft, Stripe, OpenAI and Anthropic;
    OAuth 2.0 ``error``/``error_description``; and the common flat families
    (``code``/``message``, AWS ``__type``, Kubernetes ``Status``, ``errors[]``
    of JSON:API, GraphQL and Twilio, FastAPI/DRF ``detail``, Alipay and
    Tencent named envelopes, WeChat ``errcode``).

    Args:
        body: the raw body (bytes or str) or an already decoded JSON object.
        content_type: the response's Content-Type. A media type that is not
            JSON (``text/html`` from a proxy, ``text/plain``) means the body
            is not a structured error.
        status: the HTTP status; authoritative over a body ``status`` member.

    Returns:
        The payload, or None when the body is not a structured error: absent,
        empty, not JSON, larger than `MAX_BODY_BYTES`, nested deeper than
        `MAX_DEPTH`, or a JSON value with nothing recognisable. Never raises.
    """
    if isinstance(status, bool) or not isinstance(status, int | None):
        status = None
    if isinstance(body, Mapping):
        document: object = body
        if _depth_exceeds(document, MAX_DEPTH):
            return None
    else:
        if not _may_be_json(content_type):
            return None
        document = _decode(body)
        if document is None:
            return None
    if isinstance(document, list) and document and isinstance(document[0], Mapping):
        # Some gateways wrap one error object in an array (Google streaming).
        document = document[0]
    if not isinstance(document, Mapping):
        return None
    fields = recognise_document(document, is_problem=_is_problem(content_type))
    if fields is None:
        return None
    return _build(fields, status)


def _may_be_json(content_type: str | None) -> bool:
    if content_type is None or not isinstance(content_type, str):
        return True  # sniff the body
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type:
        return True
    return bool(_JSON_MEDIA_TYPE.match(media_type)) or media_type.startswith(
        "application/x-amz-json"
    )


def _is_problem(content_type: str | None) -> bool:
    return isinstance(content_type, str) and content_type.lower().startswith(
        "application/problem+json"
    )


def _decode(body: object) -> object:
    # Typed as object: callers outside mypy pass anything, and this never raises.
    if body is None:
        return None
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        if len(raw) > MAX_BODY_BYTES:
            return None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None
    elif isinstance(body, str):
        if len(body) > MAX_BODY_BYTES:
            return None
        text = body.lstrip("\ufeff")
    else:
        return None
    text = text.strip()
    if not text or text[0] not in "{[":
        return None
    if _nesting_exceeds(text, MAX_DEPTH):
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    # Trailing commas appear in hand-written error bodies (and Azure's guide).
    try:
        return json.loads(_TRAILING_COMMA.sub(r"\1", text))
    except ValueError:
        return None


def _nesting_exceeds(text: str, limit: int) -> bool:
    # An upper bound that ignores strings: cheap, and a false positive only
    # needs more than `limit` brackets inside string values.
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _depth_exceeds(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, Mapping):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return False


def _clip(text: str | None, limit: int = MAX_STRING_CHARS) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _build(fields: Fields, status: int | None) -> ErrorPayload:
    token = fields.discount_token
    if token is not None and (len(token) > MAX_TOKEN_CHARS or not token.isascii()):
        token = None  # not a token we could ever verify; keep the rest
    body_status = fields.status
    return ErrorPayload(
        error_code=_clip(fields.error_code, 256),
        message=_clip(fields.message),
        suggestion=_clip(fields.suggestion),
        discount_token=token,
        alert_url=_clip(fields.alert_url, 8192),
        status=status if status is not None else body_status,
        source_format=fields.source_format,
        title=_clip(fields.title),
        type_uri=_clip(fields.type_uri, 2048),
        instance=_clip(fields.instance, 2048),
        retry_after=fields.retry_after,
        help_url=_clip(fields.help_url, 2048),
        localized_message=_clip(fields.localized_message),
        target=_clip(fields.target, 256),
        extensions=fields.extensions,
    )
