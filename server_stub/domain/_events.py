"""One call event on the server: a typed, capped parse of a JSON mapping, and redaction.

`parse_event` turns one decoded JSON value into an `EventRecord` (the store's value)
or a `Rejected` reason, never an exception: one bad event must not reject its batch.
`redact` runs again on the server (defence in depth: apps redact first) over
``params`` and the unknown members kept as extensions.

This module is the server's own validation; it is meant to be swapped for the SDK's
event model (``CallEvent`` / ``parse_event`` / ``Redactor``) when that lands, so it
keeps every rule in one place and exposes only `parse_event`, `redact`, `event_json`
and the caps.

Policy:
- Members and types are the contract of docs/events.md; ``bool`` is never an int, text
  has no control characters, every string, list, object and document has a cap.
- ``endpoint`` is ``METHOD /route-template``: no whitespace in the template, no query
  string or fragment (those carry ids and personal data).
- ``ts`` is RFC 3339 with a time zone, not before 2000 nor more than a day ahead of
  the server's clock.
- Unknown members are kept as ``extensions`` (at most `MAX_EXTENSIONS`), redacted.
- Redaction replaces the value of any key whose *normalised* name (lower case, only
  letters and digits) contains one of `SENSITIVE_KEY_PARTS` with ``"[Filtered]"``,
  at every depth (Sentry's lesson: substrings, not exact keys, sentry-python#7542).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs

from errdiscount_sdk import ErrorCategory, Severity
from server_stub.store import EventRecord

__all__ = [
    "FILTERED",
    "MAX_BATCH_BYTES",
    "MAX_EVENTS_PER_BATCH",
    "SENSITIVE_KEY_PARTS",
    "Rejected",
    "event_json",
    "parse_event",
    "redact",
]

#: the ``events`` of one POST /v1/events
MAX_EVENTS_PER_BATCH: Final = 1000
#: one POST /v1/events body, as sent and after gzip decompression
MAX_BATCH_BYTES: Final = 1024 * 1024
MAX_EXTENSIONS: Final = 16
#: serialized ``params`` / ``extensions``, after redaction (the store's cap is 16 KiB)
MAX_DOCUMENT_CHARS: Final = 8 * 1024
MAX_DEPTH: Final = 8
MAX_MEMBERS: Final = 64
MAX_KEY_CHARS: Final = 128
MAX_FUTURE: Final = timedelta(days=1)
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
FILTERED: Final = "[Filtered]"

SENSITIVE_KEY_PARTS: Final = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "auth",
    "key",
    "session",
    "cookie",
    "csrf",
    "jwt",
    "bearer",
    "credential",
    "card",
    "iban",
    "ssn",
    "email",
    "phone",
    "mobile",
    "otp",
    "idcard",
    "密码",
    "手机",
    "身份证",
)

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NOT_WORD = re.compile(r"[\W_]+")
_ENDPOINT = re.compile(r"[A-Z]{1,16} /[^\s?#]{0,239}")
_METHOD = re.compile(r"[A-Z]{1,16}")
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")

# (member, max characters) of optional text members
_TEXT: Final = (
    ("user_id", 256),
    ("error_code", 128),
    ("platform", 64),
    ("os_version", 64),
    ("app_version", 64),
    ("sdk_version", 64),
    ("segment", 64),
)
_CATEGORIES: Final = frozenset(item.value for item in ErrorCategory)
_SEVERITIES: Final = frozenset(item.value for item in Severity)
_KNOWN: Final = frozenset(
    {
        "event_id",
        "ts",
        "kind",
        "outcome",
        "endpoint",
        "method",
        "status",
        "category",
        "severity",
        "transient",
        "attempts",
        "duration_ms",
        "source",
        "params",
        "count",
        *(name for name, _ in _TEXT),
    }
)


@attrs.frozen
class Rejected:
    """Why one event was not accepted (a sentence naming the member, never its value)."""

    reason: str


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _normalised(key: str) -> str:
    return _NOT_WORD.sub("", key.lower())


def is_sensitive(key: str) -> bool:
    """True when the key's normalised name contains a sensitive part."""
    name = _normalised(key)
    return any(part in name for part in SENSITIVE_KEY_PARTS)


def redact(value: Any, *, depth: int = 0) -> Any:
    """A copy of a decoded JSON value with sensitive keys' values replaced, at every depth.

    Raises:
        _Invalid: deeper than `MAX_DEPTH`, or an object or list larger than `MAX_MEMBERS`.
    """
    if depth > MAX_DEPTH:
        raise _Invalid("is nested too deeply")
    if isinstance(value, dict):
        if len(value) > MAX_MEMBERS:
            raise _Invalid(f"has more than {MAX_MEMBERS} members in one object")
        redacted: dict[str, Any] = {}
        for key, item in value.items():
            if len(key) > MAX_KEY_CHARS:
                raise _Invalid(f"has a key longer than {MAX_KEY_CHARS} characters")
            redacted[key] = FILTERED if is_sensitive(key) else redact(item, depth=depth + 1)
        return redacted
    if isinstance(value, list):
        if len(value) > MAX_MEMBERS:
            raise _Invalid(f"has a list longer than {MAX_MEMBERS} items")
        return [redact(item, depth=depth + 1) for item in value]
    return value


def _text(document: Mapping[str, Any], name: str, limit: int, *, required: bool = False) -> Any:
    value = document.get(name)
    if value is None:
        if required:
            raise _Invalid(f"{name} is required")
        return None
    if not isinstance(value, str) or not value:
        raise _Invalid(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise _Invalid(f"{name} is longer than {limit} characters")
    if _CONTROL.search(value) is not None:
        raise _Invalid(f"{name} contains control characters")
    return value


def _integer(document: Mapping[str, Any], name: str, low: int, high: int, default: Any) -> Any:
    value = document.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Invalid(f"{name} must be an integer from {low} to {high}")
    return value


def _choice(
    document: Mapping[str, Any], name: str, allowed: frozenset[str], *, required: bool
) -> Any:
    value = document.get(name)
    if value is None and not required:
        return None
    if value not in allowed:
        raise _Invalid(f"{name} must be one of {', '.join(sorted(allowed))}")
    return value


def _event_id(document: Mapping[str, Any]) -> str:
    value = _text(document, "event_id", 64, required=True)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _Invalid("event_id must be a UUID") from None


def _timestamp(document: Mapping[str, Any], now: datetime) -> datetime:
    value = _text(document, "ts", 40, required=True)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid("ts must be an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise _Invalid("ts needs a time zone (e.g. Z)")
    moment = moment.astimezone(UTC)
    if not EARLIEST <= moment <= now + MAX_FUTURE:
        raise _Invalid("ts is before 2000 or more than a day in the future")
    return moment


def _duration(document: Mapping[str, Any]) -> float | None:
    value = document.get("duration_ms")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= 86_400_000
    ):
        raise _Invalid("duration_ms must be a number from 0 to 86400000")
    return float(value)


def _document(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"{name} must be an object")
    try:
        redacted: dict[str, Any] = redact(value)
    except _Invalid as exc:
        raise _Invalid(f"{name} {exc.reason}") from None
    size = len(json.dumps(redacted, ensure_ascii=False, separators=(",", ":")))
    if size > MAX_DOCUMENT_CHARS:
        raise _Invalid(f"{name} is larger than {MAX_DOCUMENT_CHARS} characters")
    return redacted


def _extensions(document: Mapping[str, Any]) -> dict[str, Any]:
    unknown = {key: value for key, value in document.items() if key not in _KNOWN}
    if len(unknown) > MAX_EXTENSIONS:
        raise _Invalid(f"at most {MAX_EXTENSIONS} unknown members are kept")
    if any(not _EXTENSION_NAME.fullmatch(key) for key in unknown):
        raise _Invalid("unknown member names are 1 to 64 of A-Z a-z 0-9 _ . : -")
    return _document("extensions", unknown)


def _parse(document: object, now: datetime) -> EventRecord:
    if not isinstance(document, dict):
        raise _Invalid("an event must be a JSON object")
    kind = document.get("kind")
    if kind != "call":
        raise _Invalid('kind must be "call"')
    endpoint = _text(document, "endpoint", 256, required=True)
    if not _ENDPOINT.fullmatch(endpoint):
        raise _Invalid("endpoint must be 'METHOD /route/template' (no query string)")
    method = _text(document, "method", 16)
    if method is not None and not _METHOD.fullmatch(method):
        raise _Invalid("method must be an upper-case HTTP method")
    transient = document.get("transient")
    if transient is not None and not isinstance(transient, bool):
        raise _Invalid("transient must be true, false or null")
    texts = {name: _text(document, name, limit) for name, limit in _TEXT}
    return EventRecord(
        event_id=_event_id(document),
        ts=_timestamp(document, now),
        kind=kind,
        outcome=_choice(document, "outcome", frozenset({"ok", "error"}), required=True),
        endpoint=endpoint,
        method=method or endpoint.partition(" ")[0],
        status=_integer(document, "status", 100, 599, None),
        category=_choice(document, "category", _CATEGORIES, required=False),
        severity=_choice(document, "severity", _SEVERITIES, required=False),
        transient=transient,
        attempts=_integer(document, "attempts", 1, 100, 1),
        duration_ms=_duration(document),
        source=_choice(document, "source", frozenset({"client", "provider"}), required=True),
        params=_document("params", document.get("params")),
        count=_integer(document, "count", 1, 1_000_000, 1),
        extensions=_extensions(document),
        **texts,
    )


def parse_event(document: object, *, now: datetime) -> EventRecord | Rejected:
    """Validate and redact one event; `Rejected` names the first problem found.

    Args:
        document: one decoded JSON value (an item of ``events``).
        now: the server's clock, for the "not in the future" rule.
    """
    try:
        return _parse(document, now)
    except _Invalid as exc:
        return Rejected(exc.reason)


def event_json(record: EventRecord) -> dict[str, Any]:
    """The event as GET /v1/events shows it: every member, extensions merged back."""
    data: dict[str, Any] = dict(record.extensions)
    data.update(
        {
            "event_id": record.event_id,
            "ts": record.ts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "kind": record.kind,
            "outcome": record.outcome,
            "user_id": record.user_id,
            "endpoint": record.endpoint,
            "method": record.method,
            "status": record.status,
            "error_code": record.error_code,
            "category": record.category,
            "severity": record.severity,
            "transient": record.transient,
            "attempts": record.attempts,
            "duration_ms": record.duration_ms,
            "platform": record.platform,
            "os_version": record.os_version,
            "app_version": record.app_version,
            "sdk_version": record.sdk_version,
            "source": record.source,
            "params": dict(record.params),
            "count": record.count,
            "segment": record.segment,
        }
    )
    return data
