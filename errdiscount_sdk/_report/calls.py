"""From a finished HTTP call to what the reporter records: route template and parameters.

Policy:
- The endpoint is ``METHOD <route template>``. The caller's template wins
  (``endpoint="/api/pay/{id}"`` on a client call); otherwise `template_path`
  guesses one from the raw path, replacing segments that look like
  identifiers by ``{id}``, so raw ids never reach the server as endpoints.
- Parameters are the query parameters (a repeated key gives a list) and, for a
  JSON object body of at most `MAX_BODY_BYTES`, its top-level members; the
  reporter redacts them before anything is queued.
- `report_call` is the one piece of glue the clients call; it never raises
  (`ErrorReporter.record_call` does not).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import httpx

if TYPE_CHECKING:
    from .._model.errors import ApiError
    from .reporter import ErrorReporter

__all__ = ["MAX_BODY_BYTES", "call_params", "report_call", "template_path"]

MAX_BODY_BYTES: Final = 64 * 1024
"""A larger JSON body is not parsed for parameters (the call's cost stays flat)."""

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_HEX = re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}")
_LONG_MIXED = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_~.-]{16,}")
ID_PLACEHOLDER: Final = "{id}"


def _looks_like_id(segment: str) -> bool:
    return bool(
        segment.isdigit()
        or _UUID.fullmatch(segment)
        or _HEX.fullmatch(segment)
        or _LONG_MIXED.fullmatch(segment)
    )


def template_path(path: str) -> str:
    """``/api/orders/123/items/9f1c…`` → ``/api/orders/{id}/items/{id}``.

    A segment becomes ``{id}`` when it is all digits, a UUID, hex of 8 or more
    characters with a digit in it, or 16 or more letters-digits-and-``-_.~``
    with both letters and digits (tokens, ULIDs, base64 ids). Query and
    fragment are dropped. Give the real template (``endpoint=``) when ids look
    like words.
    """
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    segments = path.split("/")
    return "/".join(
        ID_PLACEHOLDER if segment and _looks_like_id(segment) else segment for segment in segments
    )


def call_params(
    query: Iterable[tuple[str, str]], body: bytes | None, content_type: str | None
) -> dict[str, Any]:
    """The raw (not yet redacted) parameters of a call: query items and JSON body members."""
    params: dict[str, Any] = {}
    for key, value in query:
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    if body and len(body) <= MAX_BODY_BYTES and content_type is not None and _is_json(content_type):
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict):
            for key, value in decoded.items():
                params.setdefault(key, value)
    return params


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def report_call(
    reporter: ErrorReporter,
    request: httpx.Request,
    *,
    endpoint: str | None,
    started: float,
    attempts: int,
    status: int | None = None,
    error: ApiError | None = None,
) -> None:
    """Record the final outcome of one client call (the clients' only reporter glue).

    Parameters are extracted only when the reporter asks for them (failures).
    """

    def params() -> dict[str, Any]:
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:  # a streamed body: not ours to read
            body = None
        return call_params(
            request.url.params.multi_items(), body, request.headers.get("content-type")
        )

    reporter.record_call(
        method=request.method,
        path=request.url.path,
        endpoint=endpoint,
        status=status,
        error=error,
        attempts=attempts if error is None else None,
        duration_ms=(time.perf_counter() - started) * 1000.0,
        params=params,
    )
