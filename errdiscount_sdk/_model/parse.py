"""`parse_error_payload`: sniff the wire shape of an error body, then normalise it.

Policy (RFC 9457 §3.1 and AIP-193 alike): members of the wrong type are
ignored, unknown members are kept in ``extensions``, the HTTP status is
authoritative, and nothing here ever raises or hangs: the body is capped
before it is decoded, JSON nesting is bounded, and strings are truncated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .decode import MAX_DEPTH, decode_json, plain
from .payload import ErrorPayload
from .shapes import Fields, recognise_document
from .wire import MAX_TOKEN_BYTES
from .xmldoc import parse_xml

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "MAX_STRING_CHARS", "parse_error_payload"]

MAX_BODY_BYTES = 64 * 1024
MAX_STRING_CHARS = 4096
# A discount token is a compact JWS capped at 8 KiB by the token spec.
MAX_TOKEN_CHARS = MAX_TOKEN_BYTES

_JSON_MEDIA_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$|^text/json$")
_XML_MEDIA_TYPE = re.compile(r"^(?:application|text)/(?:[\w.+-]+\+)?xml$")


def parse_error_payload(
    body: bytes | str | Mapping[str, Any] | None,
    *,
    content_type: str | None = None,
    status: int | None = None,
) -> ErrorPayload | None:
    """Parse a structured error body into one `ErrorPayload`, whatever its shape.

    Recognised shapes: the flat seed shape (``error_code``, ``message``,
    ``suggestion``, ``discount_token``, ``alert_url``, optional ``category``); RFC 9457
    problem details (our fields as extension members); the ``{"error": {...}}``
    envelopes of Google (AIP-193), Microsoft, Stripe, OpenAI and Anthropic;
    OAuth 2.0 ``error``/``error_description``; the common flat families
    (``code``/``msg``, ``err_no``/``err_tips``, a code nested under ``data``, AWS
    ``__type``, Kubernetes ``Status``, ``errors[]`` of JSON:API, GraphQL and Twilio,
    FastAPI/DRF ``detail``, named ``*_response`` envelopes of Alipay, Taobao, JD and
    Pinduoduo, Tencent ``Response.Error``, WeChat ``errcode``); top-level arrays of
    errors (the first one is read); and XML documents: S3/Azure ``<Error>``, AWS
    ``<ErrorResponse>``, WeChat Pay ``<xml><return_code>``, Taobao ``<error_response>``,
    RFC 9457 ``<problem>`` — with DTDs and entities refused.

    Args:
        body: the raw body (bytes or str) or an already decoded JSON object.
        content_type: the response's Content-Type. JSON and XML media types are
            parsed as such; another media type (``text/html`` from a proxy,
            ``text/plain``) means the body is not a structured error; none at all
            means the body is sniffed.
        status: the HTTP status; authoritative over a body ``status`` member.

    Returns:
        The payload, or None when the body is not a structured error: absent,
        empty, neither JSON nor XML, larger than `MAX_BODY_BYTES`, nested deeper
        than `MAX_DEPTH`, an XML document declaring a DTD or entities, or a
        document with nothing recognisable. Never raises, whatever the input.
    """
    if isinstance(status, bool) or not isinstance(status, int | None):
        status = None
    syntax = _syntax(content_type)
    if isinstance(body, Mapping):
        document, xml_root = plain(body), None
    elif syntax is None:
        return None
    else:
        document, xml_root = _decode(body, syntax)
    if isinstance(document, list) and document and isinstance(document[0], Mapping):
        # A top-level array of errors (Salesforce, Google streaming): read the first.
        document = document[0]
    if not isinstance(document, Mapping):
        return None
    is_problem = _is_problem(content_type) or xml_root == "problem"
    fields = recognise_document(document, is_problem=is_problem)
    if fields is None:
        return None
    if xml_root is not None and fields.source_format != "problem":
        fields.source_format = "xml"
    return _build(fields, status)


def _syntax(content_type: str | None) -> str | None:
    """``"json"``, ``"xml"``, ``"sniff"`` (no usable media type), or None (not parsed)."""
    if content_type is None or not isinstance(content_type, str):
        return "sniff"
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not media_type:
        return "sniff"
    if _JSON_MEDIA_TYPE.match(media_type) or media_type.startswith("application/x-amz-json"):
        return "json"
    if _XML_MEDIA_TYPE.match(media_type):
        return "xml"
    return None


def _is_problem(content_type: str | None) -> bool:
    return isinstance(content_type, str) and content_type.lower().startswith("application/problem+")


def _decode(body: object, syntax: str) -> tuple[object, str | None]:
    """The decoded document and, for XML, its root's name; (None, None) when undecodable."""
    # Typed as object: callers outside mypy pass anything, and this never raises.
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
    elif isinstance(body, str):
        if len(body) > MAX_BODY_BYTES:
            return None, None
        raw = body.encode("utf-8", "surrogatepass")
    else:
        return None, None
    if len(raw) > MAX_BODY_BYTES:
        return None, None
    start = raw.lstrip()[:1]
    if syntax == "xml" or (syntax == "sniff" and start == b"<"):
        document = parse_xml(raw)
        if document is None:
            return None, None
        return document.members, document.root
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, None
    text = text.strip().lstrip("\ufeff")
    if not text or text[0] not in "{[":
        return None, None
    return decode_json(text), None


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
        category=fields.category,
        extensions=fields.extensions,
    )
