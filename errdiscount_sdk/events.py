"""The event contract, public: what apps send and what the server accepts (docs/events.md).

One definition of a valid event for both ends: the SDK's `ErrorReporter` and provider
middleware build events with `CallEvent` / `OutcomeEvent`, and `server_stub` validates
every event it receives with the same `parse_event` and redacts it again with the same
`Redactor` (``Redactor(keep_values=True)``: deny-list only, idempotent on data the app
already redacted). The batch caps are the wire's (`errdiscount_sdk.wire`).

```python
from errdiscount_sdk.events import InvalidEvent, parse_event

try:
    event = parse_event(document)
except InvalidEvent as exc:
    print(exc.reason)  # "type:status", "missing:event_id", ...
```
"""

from ._model.errors import InvalidEvent
from ._model.wire import (
    BATCH_DROPPED,
    BATCH_EVENTS,
    BATCH_SCHEMA_VERSION,
    EVENTS_PATH,
    MAX_BATCH_BYTES,
    MAX_EVENTS_PER_BATCH,
    TRACES_PATH,
)
from ._report.event import (
    CALL_MEMBERS,
    EVENT_SCHEMA_VERSION,
    LOSS_REASONS,
    MAX_ATTEMPTS,
    MAX_COUNT,
    MAX_DURATION_MS,
    MAX_EVENT_MEMBERS,
    MAX_EXTENSION_NAME,
    MAX_EXTENSIONS,
    MAX_EXTENSIONS_BYTES,
    MAX_JSON_DEPTH,
    MAX_PARAMS_BYTES,
    MAX_STRING,
    OUTCOME_MEMBERS,
    CallEvent,
    Event,
    JsonValue,
    OutcomeEvent,
    format_ts,
    normalize_endpoint,
    parse_event,
)
from ._report.redaction import (
    DEFAULT_ALLOW_HEADERS,
    DEFAULT_DENY_TERMS,
    FILTERED,
    TRUNCATED,
    Redactor,
    is_sensitive_key,
    normalize_key,
    redact_url,
)

__all__ = [
    "BATCH_DROPPED",
    "BATCH_EVENTS",
    "BATCH_SCHEMA_VERSION",
    "CALL_MEMBERS",
    "DEFAULT_ALLOW_HEADERS",
    "DEFAULT_DENY_TERMS",
    "EVENTS_PATH",
    "EVENT_SCHEMA_VERSION",
    "FILTERED",
    "LOSS_REASONS",
    "MAX_ATTEMPTS",
    "MAX_BATCH_BYTES",
    "MAX_COUNT",
    "MAX_DURATION_MS",
    "MAX_EVENTS_PER_BATCH",
    "MAX_EVENT_MEMBERS",
    "MAX_EXTENSIONS",
    "MAX_EXTENSIONS_BYTES",
    "MAX_EXTENSION_NAME",
    "MAX_JSON_DEPTH",
    "MAX_PARAMS_BYTES",
    "MAX_STRING",
    "OUTCOME_MEMBERS",
    "TRACES_PATH",
    "TRUNCATED",
    "CallEvent",
    "Event",
    "InvalidEvent",
    "JsonValue",
    "OutcomeEvent",
    "Redactor",
    "format_ts",
    "is_sensitive_key",
    "normalize_endpoint",
    "normalize_key",
    "parse_event",
    "redact_url",
]
