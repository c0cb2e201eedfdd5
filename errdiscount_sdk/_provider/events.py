"""The call event the middleware records for each request, and where it goes.

The middleware builds each event with the SDK's `CallEvent` (the contract of
docs/events.md, the same class the app's reporter and the server's validation use), so
an event it hands on is valid by construction, and redacts the query parameters with
the shared `Redactor` (the default: ``Redactor()``, the reporter's defaults). It hands
the event's wire form (a mapping) to an `EventSink` — an `ErrorReporter`, or anything
with ``record(event)``. Recording happens after the answer is sent, and a failing sink
is swallowed and logged at DEBUG: the sink never breaks or slows a request.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

from .._report.event import CallEvent, format_ts, normalize_endpoint
from .._report.redaction import Redactor

__all__ = [
    "DEFAULT_REDACTOR",
    "MAX_PARAMS",
    "MAX_PARAM_CHARS",
    "EventSink",
    "ParamsRedaction",
    "call_event",
    "normalise_path",
    "query_params",
    "record_safely",
    "redact_params",
    "rfc3339",
    "template_of",
]

_log = logging.getLogger("errdiscount_sdk.provider")

MAX_PARAMS = 50
MAX_PARAM_CHARS = 1024
MAX_QUERY_CHARS = 16 * 1024
MAX_PATH_CHARS = 2048
DEFAULT_REDACTOR: Final = Redactor()
"""The middleware's default redaction: the reporter's (docs/events.md, "Redaction")."""
# Path segments that are identifiers, not names: numbers, UUIDs, long hex strings.
_ID_SEGMENT = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}"
)
# Parameters of a route template in the frameworks' spellings: {id}, {id:int}, <id>,
# <int:id>, (?P<id>...).
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_ANGLED = re.compile(r"<(?:[A-Za-z_][A-Za-z0-9_]*(?:\([^)>]*\))?:)?([A-Za-z_][A-Za-z0-9_]*)>")
_REGEX_GROUP = re.compile(r"\(\?P<([A-Za-z_][A-Za-z0-9_]*)>[^)]*\)")

Params = Mapping[str, str | list[str]]
ParamsRedaction = Callable[[Params], Mapping[str, Any]]
"""A custom ``redact=``: takes the query parameters, returns what may be recorded."""


class EventSink(Protocol):
    """Where events go: `ErrorReporter` satisfies it; so does a list-appending test sink."""

    def record(self, event: Mapping[str, Any]) -> None: ...


def rfc3339(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and milliseconds: ``2026-08-13T09:30:00.123Z``."""
    return format_ts(moment)


def redact_params(params: Params) -> dict[str, Any]:
    """The default redaction of the query parameters: ``Redactor().params(params)``.

    Kept as the middleware's public name; the rules are the shared `Redactor`'s
    (sensitive keys by normalised substring become ``"[Filtered]"``, other values are
    sent as type and length).
    """
    return DEFAULT_REDACTOR.params(params)


def query_params(query: str | bytes) -> dict[str, str | list[str]]:
    """The query string as ``{key: value}`` (a list for repeated keys), capped.

    At most `MAX_PARAMS` keys of a query of at most 16 KiB; keys and values are cut
    to `MAX_PARAM_CHARS` characters.
    """
    if not query:
        return {}
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    params: dict[str, str | list[str]] = {}
    pairs = parse_qsl(
        text[:MAX_QUERY_CHARS],
        keep_blank_values=True,
        max_num_fields=None,
        errors="replace",
    )
    for key, value in pairs:
        key, value = key[:MAX_PARAM_CHARS], value[:MAX_PARAM_CHARS]
        if key in params:
            previous = params[key]
            if isinstance(previous, list):
                if len(previous) < MAX_PARAMS:
                    previous.append(value)
            else:
                params[key] = [previous, value]
        elif len(params) < MAX_PARAMS:
            params[key] = value
    return params


def normalise_path(path: str) -> str:
    """A raw path with identifier segments replaced by ``{id}`` (when no template is known)."""
    segments = path[:MAX_PATH_CHARS].split("?")[0].split("/")
    return "/".join("{id}" if _ID_SEGMENT.fullmatch(s) else s for s in segments) or "/"


@functools.lru_cache(maxsize=1024)  # an app has a bounded set of routes
def template_of(route: str) -> str:
    """A framework's route template in one spelling: parameters as ``{name}``, leading ``/``.

    ``/pay/{id:int}`` (Starlette), ``/pay/<int:id>`` (Flask) and ``pay/<int:id>`` or
    ``^pay/(?P<id>[0-9]+)/$`` (Django) all become ``/pay/{id}``.
    """
    text = _REGEX_GROUP.sub(r"{\1}", route[:MAX_PATH_CHARS])
    if text.startswith("^"):
        text = text[1:]
    if text.endswith("$"):
        text = text[:-1]
    text = _BRACED.sub(r"{\1}", _ANGLED.sub(r"{\1}", text))
    return text if text.startswith("/") else "/" + text


def call_event(
    *,
    started: dt.datetime,
    duration_ms: float,
    method: str,
    endpoint_path: str,
    status: int | None,
    user_id: str | None,
    params: Mapping[str, Any],
    error_code: str | None = None,
    category: str | None = None,
    severity: str | None = None,
    transient: bool = False,
    platform: str | None = None,
    os_version: str | None = None,
    app_version: str | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """One finished request as the event's wire form (``source: "provider"``, one attempt).

    Built and validated as a `CallEvent`. ``outcome`` is ``"error"`` for a status of
    400 or more (or none: the answer failed), else ``"ok"``. ``endpoint_path`` is a
    route template (or a normalised path); ``params`` are already redacted.

    Raises:
        InvalidEvent: a member breaks the contract (an odd method, a control
            character in the user id, ...).
    """
    failed = status is None or status >= 400
    endpoint = normalize_endpoint(method, endpoint_path)
    event = CallEvent(
        ts=started,
        outcome="error" if failed else "ok",
        user_id=user_id,
        endpoint=endpoint,
        method=endpoint.partition(" ")[0],
        status=status,
        error_code=error_code,
        category=category,
        severity=severity,
        transient=transient,
        attempts=1,
        duration_ms=round(max(duration_ms, 0.0), 3),
        platform=platform,
        os_version=os_version,
        app_version=app_version,
        source="provider",
        params=params,
        segment=segment,
    )
    return event.to_json()


def record_safely(sink: EventSink | None, event: Mapping[str, Any]) -> None:
    """Hand ``event`` to ``sink``; anything the sink raises is logged at DEBUG and dropped."""
    if sink is None:
        return
    try:
        sink.record(event)
    except Exception:
        _log.debug("the event sink raised; event %s dropped", event.get("event_id"), exc_info=True)
