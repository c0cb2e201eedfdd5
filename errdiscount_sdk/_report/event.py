"""The event contract: one finished call (`CallEvent`) or business outcome (`OutcomeEvent`).

Both sides use this module: the app's `ErrorReporter` builds events with it and
the server validates what it receives with `parse_event`, so there is one
definition of what a valid event is. Construction validates too: an event
object that exists is a valid event (the attrs validators ARE the contract
checks; `parse_event` only adds type checks of raw JSON and maps unknown
members into ``extensions``).

Policy:
- Strict: a member of the wrong JSON type, an unknown enum value, a string or
  object over its cap, a non-UTC or malformed ``ts`` raise `InvalidEvent` with a
  short ``reason`` (``"<problem>:<member>"``); nothing is coerced except ``ts``,
  which is normalised to ``YYYY-MM-DDTHH:MM:SS.mmmZ``.
- Unknown top-level members are kept in ``extensions`` (capped), so a newer
  producer never loses data through an older consumer.
- JSON containers inside ``params`` and ``extensions`` are frozen (mappings
  become read-only proxies, lists tuples); `to_json` gives plain JSON back.

The wire names, caps and the schema version are the module constants below
(one place; docs/events.md documents them).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

import attrs

from .._model.enums import ErrorCategory, Severity
from .._model.errors import InvalidEvent
from .._version import __version__

__all__ = [
    "CALL_MEMBERS",
    "EVENT_SCHEMA_VERSION",
    "OUTCOME_MEMBERS",
    "CallEvent",
    "Event",
    "JsonValue",
    "OutcomeEvent",
    "format_ts",
    "normalize_endpoint",
    "parse_event",
]

# --- wire names and caps (the contract; the future `wire` module's home) -------------

EVENT_SCHEMA_VERSION: Final = 1
"""Version of the event schema; sent as the batch body's ``schema_version``."""

KIND_CALL: Final = "call"
KIND_OUTCOME: Final = "outcome"
OUTCOMES: Final = frozenset({"ok", "error"})
SOURCES: Final = frozenset({"client", "provider"})
CATEGORIES: Final = frozenset(category.value for category in ErrorCategory)
SEVERITIES: Final = frozenset(severity.value for severity in Severity)

CALL_MEMBERS: Final = (
    "event_id",
    "ts",
    "kind",
    "outcome",
    "user_id",
    "endpoint",
    "method",
    "status",
    "error_code",
    "category",
    "severity",
    "transient",
    "attempts",
    "duration_ms",
    "platform",
    "os_version",
    "app_version",
    "sdk_version",
    "source",
    "params",
    "count",
    "segment",
    "extensions",
)
OUTCOME_MEMBERS: Final = ("event_id", "ts", "kind", "name", "user_id", "value", "extensions")

# The batch body's members and caps (POST /v1/events) are in .._model.wire.
LOSS_REASONS: Final = ("queue_overflow", "network_error", "ratelimited", "send_error")

# Longest string per member, in characters.
MAX_STRING: Final[Mapping[str, int]] = MappingProxyType(
    {
        "event_id": 36,
        "user_id": 256,
        "endpoint": 300,
        "method": 16,
        "error_code": 128,
        "platform": 64,
        "os_version": 128,
        "app_version": 128,
        "sdk_version": 64,
        "segment": 128,
        "name": 128,
        "value": 256,
    }
)
MAX_PARAMS_BYTES: Final = 8 * 1024
"""``params`` as compact UTF-8 JSON."""
MAX_EXTENSIONS: Final = 32
MAX_EXTENSIONS_BYTES: Final = 4 * 1024
MAX_EXTENSION_NAME: Final = 64
MAX_JSON_DEPTH: Final = 12
MAX_ATTEMPTS: Final = 100
MAX_COUNT: Final = 10_000_000
MAX_DURATION_MS: Final = 86_400_000.0
MAX_EVENT_MEMBERS: Final = 64
"""Members in one raw event object (known and unknown): parse refuses more unread."""

SDK_VERSION: Final = __version__

JsonValue = None | bool | int | float | str | tuple["JsonValue", ...] | Mapping[str, "JsonValue"]
"""A frozen JSON value (what `CallEvent.params` and ``extensions`` hold)."""

_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|z|\+00:00)\Z")
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]{0,15}\Z")
_ROUTE_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f?#]")
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- validators ----------------------------------------------------------------------


def _fail(problem: str, member: str) -> InvalidEvent:
    return InvalidEvent(f"{problem}:{member}")


def _text(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise _fail("type", name)
    if not value:
        raise _fail("empty", name)
    if len(value) > MAX_STRING[name]:
        raise _fail("too_long", name)
    if _CONTROL.search(value):  # a newline in a user id forges log lines and CSV rows
        raise _fail("control", name)


def _optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text(attribute.name, value, optional=True)


def _one_of(choices: frozenset[str], *, optional: bool = False) -> Callable[..., None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise _fail("type", attribute.name)
        if value not in choices:
            raise _fail("value", attribute.name)

    return check


def _int_in(low: int, high: int, *, optional: bool = False) -> Callable[..., None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None and optional:
            return
        if type(value) is not int:  # bool is an int subclass: refuse it
            raise _fail("type", attribute.name)
        if not low <= value <= high:
            raise _fail("range", attribute.name)

    return check


def _event_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise _fail("type", "event_id")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise _fail("format", "event_id") from None
    if len(value) != 36 or str(parsed) != value.lower():
        raise _fail("format", "event_id")


def _optional_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, bool):
        raise _fail("type", attribute.name)


def _duration(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("type", "duration_ms")
    if not (math.isfinite(value) and 0 <= value <= MAX_DURATION_MS):
        raise _fail("range", "duration_ms")


def _endpoint(instance: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    _text("endpoint", value, optional=False)
    assert isinstance(value, str)
    method, _, route = value.partition(" ")
    if not route or _ROUTE_FORBIDDEN.search(route):
        raise _fail("format", "endpoint")
    if method != instance.method:
        raise _fail("mismatch", "endpoint")


def _method(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _text("method", value, optional=False)
    assert isinstance(value, str)
    if not _METHOD.match(value):
        raise _fail("format", "method")


def _outcome_value(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _fail("range", "value")
        return
    _text("value", value, optional=False)


# --- JSON freezing, sizes ------------------------------------------------------------


def _freeze(value: object, member: str, depth: int) -> JsonValue:
    """Check ``value`` is JSON (within the depth cap) and return a read-only copy."""
    if depth > MAX_JSON_DEPTH:
        raise _fail("too_deep", member)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail("range", member)
        return value
    if isinstance(value, list | tuple):
        return tuple(_freeze(item, member, depth + 1) for item in value)
    if isinstance(value, Mapping):
        frozen: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail("key_type", member)
            frozen[key] = _freeze(item, member, depth + 1)
        return MappingProxyType(frozen)
    raise _fail("type", member)


def thaw(value: JsonValue) -> Any:
    """A frozen JSON value back to plain ``dict``/``list`` JSON."""
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    return value


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (the unit of every size cap)."""
    return len(
        json.dumps(thaw(value), ensure_ascii=False, separators=(",", ":")).encode(
            "utf-8", "surrogatepass"
        )
    )


def _freeze_params(value: object) -> Mapping[str, JsonValue]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise _fail("type", "params")
    frozen = _freeze(value, "params", 1)
    assert isinstance(frozen, Mapping)
    if frozen and json_size(frozen) > MAX_PARAMS_BYTES:
        raise _fail("too_large", "params")
    return frozen


def _freeze_extensions(value: object) -> Mapping[str, JsonValue]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise _fail("type", "extensions")
    if len(value) > MAX_EXTENSIONS:
        raise _fail("too_many", "extensions")
    for name in value:
        if not isinstance(name, str) or not _EXTENSION_NAME.match(name):
            raise _fail("name", "extensions")
    frozen = _freeze(value, "extensions", 1)
    assert isinstance(frozen, Mapping)
    if frozen and json_size(frozen) > MAX_EXTENSIONS_BYTES:
        raise _fail("too_large", "extensions")
    return frozen


# --- time ----------------------------------------------------------------------------


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: ``2030-01-01T12:00:00.123Z``."""
    if moment.tzinfo is None:
        raise _fail("naive", "ts")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _now_ts() -> str:
    return format_ts(datetime.now(UTC))


def _normalize_ts(value: object) -> str:
    if isinstance(value, datetime):
        return format_ts(value)
    if not isinstance(value, str):
        raise _fail("type", "ts")
    if len(value) > 40 or not _TS.match(value):
        raise _fail("format", "ts")
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    whole, dot, rest = text.partition(".")
    if dot:  # fromisoformat wants at most 6 fraction digits before 3.11's wider support
        fraction, offset = rest[:-6], rest[-6:]
        text = f"{whole}.{fraction[:6].ljust(6, '0')}{offset}"
    try:
        return format_ts(datetime.fromisoformat(text))
    except ValueError:
        raise _fail("format", "ts") from None


def _new_event_id() -> str:
    return str(uuid.uuid4())


# --- the events ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CallEvent:
    """One finished API call, success or failure, after retries (``kind: "call"``).

    Attributes:
        event_id: a UUID (the dedupe key); a fresh uuid4 by default.
        ts: when the call finished, RFC 3339 UTC (a `datetime` is converted).
        outcome: ``"ok"`` or ``"error"``.
        endpoint: method + route *template*, ``"POST /api/pay/{id}"``; its
            method part equals ``method``. Never a raw path with ids.
        method: the HTTP method, upper case.
        user_id: who made the call, or None.
        status: the final HTTP status, or None when no response arrived.
        error_code: the provider's stable code (``PAY_001``), or None.
        category, severity: the classification's values (`ErrorCategory`,
            `Severity`), or None for successes.
        transient: whether the failure was classified transient, or None.
        attempts: attempts made (1 = no retry).
        duration_ms: wall time of the whole call, retries included; for an
            aggregated success, the mean over the ``count`` calls.
        platform, os_version, app_version, sdk_version: where the call ran.
        source: ``"client"`` (the app's SDK) or ``"provider"`` (middleware).
        params: the call's parameters, redacted (see `Redactor`).
        count: N identical-outcome calls of this user and endpoint in the same
            minute that this one event stands for; None means 1.
        segment: the user's segment (``"vip"``), used by detection, or None.
        extensions: members this version does not know, kept as they came.
    """

    event_id: str = attrs.field(factory=_new_event_id, validator=_event_id)
    ts: str = attrs.field(factory=_now_ts, converter=_normalize_ts)
    kind: Literal["call"] = attrs.field(default="call", validator=_one_of(frozenset({KIND_CALL})))
    outcome: Literal["ok", "error"] = attrs.field(validator=_one_of(OUTCOMES))
    method: str = attrs.field(validator=_method)
    endpoint: str = attrs.field(validator=_endpoint)
    user_id: str | None = attrs.field(default=None, validator=_optional_text)
    status: int | None = attrs.field(default=None, validator=_int_in(100, 599, optional=True))
    error_code: str | None = attrs.field(default=None, validator=_optional_text)
    category: str | None = attrs.field(default=None, validator=_one_of(CATEGORIES, optional=True))
    severity: str | None = attrs.field(default=None, validator=_one_of(SEVERITIES, optional=True))
    transient: bool | None = attrs.field(default=None, validator=_optional_bool)
    attempts: int = attrs.field(default=1, validator=_int_in(1, MAX_ATTEMPTS))
    duration_ms: float = attrs.field(default=0.0, validator=_duration)
    platform: str | None = attrs.field(default=None, validator=_optional_text)
    os_version: str | None = attrs.field(default=None, validator=_optional_text)
    app_version: str | None = attrs.field(default=None, validator=_optional_text)
    sdk_version: str | None = attrs.field(default=SDK_VERSION, validator=_optional_text)
    source: Literal["client", "provider"] = attrs.field(
        default="client", validator=_one_of(SOURCES)
    )
    params: Mapping[str, JsonValue] = attrs.field(factory=dict, converter=_freeze_params)
    count: int | None = attrs.field(default=None, validator=_int_in(1, MAX_COUNT, optional=True))
    segment: str | None = attrs.field(default=None, validator=_optional_text)
    extensions: Mapping[str, JsonValue] = attrs.field(factory=dict, converter=_freeze_extensions)

    def to_json(self) -> dict[str, Any]:
        """The wire form: every member (nulls included); ``count``, ``segment``
        and ``extensions`` only when set."""
        data: dict[str, Any] = {
            "event_id": self.event_id,
            "ts": self.ts,
            "kind": self.kind,
            "outcome": self.outcome,
            "user_id": self.user_id,
            "endpoint": self.endpoint,
            "method": self.method,
            "status": self.status,
            "error_code": self.error_code,
            "category": self.category,
            "severity": self.severity,
            "transient": self.transient,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
            "platform": self.platform,
            "os_version": self.os_version,
            "app_version": self.app_version,
            "sdk_version": self.sdk_version,
            "source": self.source,
            "params": thaw(self.params),
        }
        if self.count is not None:
            data["count"] = self.count
        if self.segment is not None:
            data["segment"] = self.segment
        if self.extensions:
            data["extensions"] = thaw(self.extensions)
        return data

    @property
    def calls(self) -> int:
        """How many calls this event stands for (``count``, or 1)."""
        return 1 if self.count is None else self.count

    def timestamp(self) -> datetime:
        """``ts`` as an aware UTC `datetime`."""
        return datetime.fromisoformat(self.ts[:-1] + "+00:00")


@attrs.frozen(kw_only=True)
class OutcomeEvent:
    """A business outcome of a user (``kind: "outcome"``): a purchase, a churn, ...

    Attributes:
        event_id: a UUID (the dedupe key); a fresh uuid4 by default.
        ts: when it happened, RFC 3339 UTC.
        name: what happened (``"purchase"``), 1-128 characters.
        user_id: whose outcome, or None.
        value: a number (an amount), a short string, a bool, or None.
        extensions: members this version does not know.
    """

    event_id: str = attrs.field(factory=_new_event_id, validator=_event_id)
    ts: str = attrs.field(factory=_now_ts, converter=_normalize_ts)
    kind: Literal["outcome"] = attrs.field(
        default="outcome", validator=_one_of(frozenset({KIND_OUTCOME}))
    )
    name: str = attrs.field(validator=lambda _, __, value: _text("name", value, optional=False))
    user_id: str | None = attrs.field(default=None, validator=_optional_text)
    value: bool | int | float | str | None = attrs.field(default=None, validator=_outcome_value)
    extensions: Mapping[str, JsonValue] = attrs.field(factory=dict, converter=_freeze_extensions)

    def to_json(self) -> dict[str, Any]:
        """The wire form (``extensions`` only when set)."""
        data: dict[str, Any] = {
            "event_id": self.event_id,
            "ts": self.ts,
            "kind": self.kind,
            "name": self.name,
            "user_id": self.user_id,
            "value": self.value,
        }
        if self.extensions:
            data["extensions"] = thaw(self.extensions)
        return data


Event = CallEvent | OutcomeEvent

_REQUIRED: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        KIND_CALL: frozenset({"event_id", "ts", "outcome", "endpoint", "method"}),
        KIND_OUTCOME: frozenset({"event_id", "ts", "name"}),
    }
)
_KNOWN: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {KIND_CALL: CALL_MEMBERS, KIND_OUTCOME: OUTCOME_MEMBERS}
)


def parse_event(data: object) -> Event:
    """Validate one raw event (decoded JSON) and return the typed event.

    Args:
        data: a JSON object (``Mapping`` with ``str`` keys).

    Returns:
        A `CallEvent` (``kind: "call"``) or an `OutcomeEvent` (``kind: "outcome"``).

    Raises:
        InvalidEvent: the event breaks the contract; ``reason`` says how.
    """
    if not isinstance(data, Mapping):
        raise InvalidEvent("type:event")
    if len(data) > MAX_EVENT_MEMBERS:
        raise InvalidEvent("too_many:members")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _KNOWN:
        raise InvalidEvent("value:kind" if "kind" in data else "missing:kind")
    for name in _REQUIRED[kind]:
        if name not in data:
            raise InvalidEvent(f"missing:{name}")
    known = _KNOWN[kind]
    members: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise InvalidEvent("key_type:event")
        if name in known:
            members[name] = value
        else:
            unknown[name] = value
    if unknown:
        explicit = members.get("extensions")
        if explicit is not None and not isinstance(explicit, Mapping):
            raise InvalidEvent("type:extensions")
        members["extensions"] = {**unknown, **(explicit or {})}
    if isinstance(members.get("ts"), datetime):  # raw JSON has no datetimes
        raise InvalidEvent("type:ts")
    if kind == KIND_CALL:
        if "duration_ms" in members and type(members["duration_ms"]) is int:
            members["duration_ms"] = float(members["duration_ms"])
        return CallEvent(**members)
    return OutcomeEvent(**members)


def normalize_endpoint(method: str, route: str) -> str:
    """``"POST /api/pay/{id}"`` from a method and a route template.

    The method is upper-cased; the route loses any query string or fragment,
    gets a leading ``/`` and loses a trailing one (except the root).

    Raises:
        InvalidEvent: the method is not an HTTP token, or the route is empty
            or holds whitespace or control characters.
    """
    verb = method.strip().upper()
    if not _METHOD.match(verb):
        raise InvalidEvent("format:method")
    path = route.strip().split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") and path != "*":
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    endpoint = f"{verb} {path}"
    if _ROUTE_FORBIDDEN.search(path) or len(endpoint) > MAX_STRING["endpoint"]:
        raise InvalidEvent("format:endpoint")
    return endpoint
