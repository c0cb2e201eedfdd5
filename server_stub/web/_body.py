"""Reading request bodies safely: size cap while streaming, JSON media type, closed objects.

A body is read chunk by chunk and refused as soon as it passes the cap, so a client
cannot make the server buffer more than ``limit`` bytes. Objects are closed: unknown
members, missing required members and wrong types are 422 INVALID_BODY.

Text must be Unicode (I-JSON, RFC 7493 §2.1): a ``\ud800`` escape decodes to a lone
surrogate, which no database driver, log handler or UTF-8 response can encode, so a
body holding one, in any string or member name, is 400 INVALID_JSON before any
handler sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import attrs
from starlette.requests import ClientDisconnect, Request

from ._problems import HttpProblem

__all__ = ["Field", "invalid_body", "read_json"]

_MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


@attrs.frozen
class Field:
    """One member of a closed object: its JSON types (bool is never an int) and limits."""

    types: tuple[type, ...]
    required: bool = True
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: type | None = None
    max_items: int | None = None


def invalid_body(message: str) -> HttpProblem:
    return HttpProblem(
        422, "INVALID_BODY", message, "Send a JSON object with exactly the documented members."
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise HttpProblem(
            400, "INVALID_JSON", "The body was cut short.", "Send it again."
        ) from None
    return b"".join(chunks)


def _too_large(limit: int) -> HttpProblem:
    return HttpProblem(
        413,
        "BODY_TOO_LARGE",
        f"The request body is larger than {limit} bytes.",
        "Send a smaller body.",
    )


def _is_json_media_type(value: str | None) -> bool:
    if value is None:
        return False
    media, _, params = value.partition(";")
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
        return False
    return media.strip().lower() == "application/json"


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _type_ok(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, types)


def _check_range(name: str, value: float, field: Field) -> None:
    if field.minimum is not None and value < field.minimum:
        raise invalid_body(f"Member {name!r} is too small.")
    if field.maximum is not None and value > field.maximum:
        raise invalid_body(f"Member {name!r} is too large.")


def check_object(document: object, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Validate a decoded JSON value against a closed object description."""
    if not isinstance(document, dict):
        raise invalid_body("The body must be a JSON object.")
    unknown = sorted(set(document) - set(fields))
    if unknown:
        raise invalid_body(f"Unknown member {unknown[0][:64]!r}.")
    for name, field in fields.items():
        if name not in document:
            if field.required:
                raise invalid_body(f"Member {name!r} is required.")
            continue
        value = document[name]
        if value is None and not field.required:
            continue
        if (
            int in field.types
            and isinstance(value, float)
            and math.isfinite(value)
            and value.is_integer()
        ):
            # JSON Schema's integer is any number with a zero fraction: 5.0 is 5.
            value = document[name] = int(value)
        if not _type_ok(value, field.types):
            raise invalid_body(f"Member {name!r} has the wrong type.")
        if (
            field.max_length is not None
            and isinstance(value, str | list)
            and not 0 < len(value) <= field.max_length
        ):
            raise invalid_body(f"Member {name!r} must have 1 to {field.max_length} items.")
        if isinstance(value, int | float) and not isinstance(value, bool):
            _check_range(name, value, field)
        items = field.items
        if (
            items is not None
            and isinstance(value, list)
            and not all(_type_ok(item, (items,)) for item in value)
        ):
            raise invalid_body(f"Items of {name!r} have the wrong type.")
    return document


async def read_json(request: Request, limit: int, fields: Mapping[str, Field]) -> dict[str, Any]:
    """Read, decode and validate the body; raises `HttpProblem` with our codes.

    Raises:
        HttpProblem: 415 UNSUPPORTED_MEDIA_TYPE, 413 BODY_TOO_LARGE, 400 INVALID_JSON,
            422 INVALID_BODY.
    """
    if not _is_json_media_type(request.headers.get("content-type")):
        raise HttpProblem(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "The body must be application/json (UTF-8).",
            "Send Content-Type: application/json.",
        )
    raw = await _read_capped(request, limit)
    if raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH * 64:
        raise invalid_body("The body is too deeply structured.")
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, NaN
        raise HttpProblem(
            400, "INVALID_JSON", "The body is not valid JSON.", "Send a JSON object."
        ) from None
    if not _is_unicode(document):
        raise HttpProblem(
            400,
            "INVALID_JSON",
            "The body holds a string that is not Unicode text (a lone surrogate escape).",
            "Send UTF-8 text; escape characters outside the BMP as surrogate pairs.",
        )
    return check_object(document, fields)


def _is_unicode(value: object) -> bool:
    """No lone surrogate in any string or member name of a decoded JSON value."""
    if isinstance(value, str):
        return value.isascii() or _SURROGATE.search(value) is None
    if isinstance(value, dict):
        return all(_is_unicode(k) and _is_unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_unicode(item) for item in value)
    return True
