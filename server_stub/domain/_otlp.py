"""OTLP/HTTP traces to call events: decode a request, map HTTP spans, encode the answer.

Decoding follows the OTLP specification: ``application/x-protobuf`` is the binary
``ExportTraceServiceRequest``; ``application/json`` is its proto3 JSON mapping with
the OTLP exceptions (trace and span ids are hex, not base64; enums are integers;
unknown fields are ignored).

Mapping policy (docs/events.md, "OTLP mapping"):
- Only SERVER spans (``source: "provider"``) and CLIENT spans (``source: "client"``)
  that carry ``http.request.method`` (or the older ``http.method``) are calls; every
  other span is ignored, not rejected.
- ``endpoint`` is ``METHOD`` + ``http.route`` (server) or ``url.template`` (client),
  each falling back to the other; an HTTP span with neither is ignored with a warning
  in ``partial_success.error_message`` (a raw path would leak ids).
- ``status`` from ``http.response.status_code`` (or ``http.status_code``), user from
  ``user.id`` then ``enduser.id``, ``error_code`` from ``errdiscount.error_code``;
  resource ``os.type`` / ``os.version`` / ``service.version`` become ``platform`` /
  ``os_version`` / ``app_version``; ``telemetry.sdk.*`` becomes ``sdk_version``.
- ``ts`` is the span start, ``duration_ms`` its length; ``event_id`` is a UUIDv5 of
  trace id + span id, so a re-exported span is a duplicate, not a second call.
- ``outcome`` is ``error`` when the status is 5xx, the span status is ERROR,
  ``error.type`` is set or ``errdiscount.error_code`` is set. Errors are classified
  by `ERROR_RULES` (a table, like the SDK's classifier in docs/errors.md).
- The mapped event then goes through `to_record` — the SDK's `parse_event` and
  `Redactor`, the same validation and redaction as POST /v1/events: a span that fails
  it is *rejected* (counted in ``partial_success.rejected_spans``).
"""

from __future__ import annotations

import binascii
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import attrs
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from errdiscount_sdk import ErrorCategory, Severity
from server_stub.store import EventRecord

from ._events import Rejected, to_record

__all__ = [
    "ERROR_RULES",
    "MAX_SPANS",
    "OTLP_EVENT_NAMESPACE",
    "Encoding",
    "OtlpInvalid",
    "SpanMapping",
    "decode_request",
    "encode_response",
    "encode_status",
    "map_spans",
]

Encoding = Literal["protobuf", "json"]

#: spans in one export request; the OTel SDK's batch processor sends at most 512
MAX_SPANS: Final = 10_000
#: UUIDv5 namespace of span-derived event ids (fixed forever: ids must stay stable)
OTLP_EVENT_NAMESPACE: Final = uuid.UUID("6f1d3c52-8a0e-4f57-9a43-2f1b7e0c9d11")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SOURCES: Final = {Span.SPAN_KIND_SERVER: "provider", Span.SPAN_KIND_CLIENT: "client"}

_N, _P, _B = ErrorCategory.NETWORK, ErrorCategory.PROTOCOL, ErrorCategory.BUSINESS
_MINOR, _MODERATE, _SEVERE = Severity.MINOR, Severity.MODERATE, Severity.SEVERE
#: status → (category, severity, transient) for failed HTTP spans; see `classify`
ERROR_RULES: Final[Mapping[int, tuple[ErrorCategory, Severity, bool]]] = {
    401: (_P, _MODERATE, False),
    403: (_P, _MODERATE, False),
    404: (_P, _MODERATE, False),
    408: (_P, _MINOR, True),
    409: (_P, _MINOR, False),
    425: (_P, _MINOR, True),
    429: (_P, _MINOR, True),
    502: (_P, _SEVERE, True),
    503: (_P, _SEVERE, True),
    504: (_P, _SEVERE, True),
    529: (_P, _SEVERE, True),
}
#: statuses whose meaning the status alone fixes, whatever business code is attached
_STATUS_OWNS_MEANING: Final = frozenset({401, 403, 404, 405, 406, 408, 413, 414, 415, 429, 431})
_NO_RESPONSE: Final = (_N, _MODERATE, True)
_OTHER_5XX: Final = (_P, _SEVERE, False)
_OTHER_4XX: Final = (_P, _MODERATE, False)
_BUSINESS: Final = (_B, _MINOR, False)
_ERROR_WITHOUT_FAILING_STATUS: Final = (_P, _MODERATE, False)

# HTTP status → google.rpc.Code of the Status body of a failed export
_RPC_CODES: Final = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}
_RPC_INTERNAL: Final = 13


class OtlpInvalid(ValueError):
    """The export request cannot be decoded (400, not retryable)."""


@attrs.frozen
class SpanMapping:
    """What an export request turned into.

    Attributes:
        records: the call events (validated and redacted).
        rejected: spans that looked like calls but failed validation, with reasons.
        ignored: spans that are not HTTP SERVER/CLIENT calls.
        untemplated: HTTP spans with neither ``http.route`` nor ``url.template``.
    """

    records: tuple[EventRecord, ...]
    rejected: tuple[str, ...]
    ignored: int
    untemplated: int

    def message(self) -> str:
        """``partial_success.error_message``: empty when everything was taken."""
        parts: list[str] = []
        if self.rejected:
            reasons = sorted(set(self.rejected))[:3]
            parts.append(f"{len(self.rejected)} spans rejected: " + "; ".join(reasons))
        if self.untemplated:
            parts.append(f"{self.untemplated} HTTP spans ignored: no http.route or url.template")
        return ". ".join(parts)


def _hex_to_base64(value: object) -> object:
    if not isinstance(value, str) or not value:
        return value
    try:
        return binascii.b2a_base64(bytes.fromhex(value), newline=False).decode("ascii")
    except ValueError:
        raise OtlpInvalid("trace and span ids are hex strings in OTLP/JSON") from None


def _rewrite_ids(document: Any) -> None:
    """OTLP/JSON ids are hex; protobuf's JSON parser expects base64: convert in place."""
    if not isinstance(document, dict):
        raise OtlpInvalid("the body must be a JSON object")
    for resource_spans in _items(document, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _rewrite_one(span)
                for link in _items(span, "links"):
                    _rewrite_one(link)


def _items(parent: object, *names: str) -> Iterable[dict[str, Any]]:
    if not isinstance(parent, dict):
        return ()
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return ()


def _rewrite_one(item: dict[str, Any]) -> None:
    for name in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        if name in item:
            item[name] = _hex_to_base64(item[name])


def decode_request(body: bytes, encoding: Encoding) -> ExportTraceServiceRequest:
    """Decode an export request.

    Raises:
        OtlpInvalid: not a valid request in that encoding, or more than `MAX_SPANS`.
    """
    request = ExportTraceServiceRequest()
    try:
        if encoding == "protobuf":
            request.ParseFromString(body)
        else:
            document = json.loads(body.decode("utf-8"))
            _rewrite_ids(document)
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        if isinstance(exc, OtlpInvalid):
            raise
        raise OtlpInvalid(f"not a valid ExportTraceServiceRequest ({encoding})") from None
    spans = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    if spans > MAX_SPANS:
        raise OtlpInvalid(f"at most {MAX_SPANS} spans per export request")
    return request


def _scalar(value: Any) -> str | int | float | bool | None:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "int_value", "double_value", "bool_value"):
        found: str | int | float | bool = getattr(value, kind)
        return found
    return None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, str | int | float | bool]:
    found: dict[str, str | int | float | bool] = {}
    for pair in pairs:
        value = _scalar(pair.value)
        if value is not None:
            found[pair.key] = value
    return found


def _text(attributes: Mapping[str, object], *names: str) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _int(attributes: Mapping[str, object], *names: str) -> int | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit() and len(value) <= 3:
            return int(value)
    return None


def classify(status: int | None, *, has_error_code: bool) -> tuple[ErrorCategory, Severity, bool]:
    """(category, severity, transient) of a failed HTTP span.

    No status: network. A business code on a 4xx whose status does not own its
    meaning: business. Then `ERROR_RULES`, then other 5xx / other 4xx; an error with a
    non-failing status (span status ERROR on a 2xx) is protocol, moderate.
    """
    if status is None:
        return _NO_RESPONSE
    if has_error_code and 400 <= status < 500 and status not in _STATUS_OWNS_MEANING:
        return _BUSINESS
    if status in ERROR_RULES:
        return ERROR_RULES[status]
    if status >= 500:
        return _OTHER_5XX
    if status >= 400:
        return _OTHER_4XX
    return _ERROR_WITHOUT_FAILING_STATUS


def _sdk_version(resource: Mapping[str, object]) -> str | None:
    version = _text(resource, "telemetry.sdk.version")
    if version is None:
        return None
    language = _text(resource, "telemetry.sdk.language") or "unknown"
    return f"otel-{language}/{version}"[:64]


def _method(attributes: Mapping[str, object]) -> str | None:
    method = _text(attributes, "http.request.method", "http.method")
    if method is None:
        return None
    method = method.upper()
    # OTel's "_OTHER" (a method outside the known set) and anything odd become OTHER.
    return method if method.isalpha() and len(method) <= 16 else "OTHER"


def _span_event(
    span: Span,
    attributes: Mapping[str, object],
    *,
    source: str,
    method: str,
    route: str,
    resource: Mapping[str, object],
) -> dict[str, Any]:
    status = _int(attributes, "http.response.status_code", "http.status_code")
    error_type = _text(attributes, "error.type")
    error_code = _text(attributes, "errdiscount.error_code")
    failed = (
        (status is not None and status >= 500)
        or span.status.code == Status.STATUS_CODE_ERROR
        or error_type is not None
        or error_code is not None
    )
    start = span.start_time_unix_nano
    end = span.end_time_unix_nano
    resends = _int(attributes, "http.request.resend_count") or 0
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid5(OTLP_EVENT_NAMESPACE, span.trace_id.hex() + span.span_id.hex())),
        "ts": (_EPOCH + timedelta(microseconds=start // 1000)).isoformat(),
        "kind": "call",
        "outcome": "error" if failed else "ok",
        "endpoint": f"{method} {route if route.startswith('/') else '/' + route}",
        "method": method,
        "status": status,
        "error_code": error_code,
        "attempts": min(1 + resends, 100),
        "duration_ms": (end - start) / 1e6 if end >= start else None,
        "user_id": _text(attributes, "user.id", "enduser.id"),
        "platform": _text(resource, "os.type"),
        "os_version": _text(resource, "os.version"),
        "app_version": _text(resource, "service.version"),
        "sdk_version": _sdk_version(resource),
        "source": source,
        "otel.trace_id": span.trace_id.hex(),
        "otel.span_id": span.span_id.hex(),
    }
    service = _text(resource, "service.name")
    if service is not None:
        event["service.name"] = service[:128]
    if error_type is not None:
        event["error.type"] = error_type[:128]
    if failed:
        category, severity, transient = classify(status, has_error_code=error_code is not None)
        event.update(category=category.value, severity=severity.value, transient=transient)
    return event


def map_spans(request: ExportTraceServiceRequest, *, now: datetime) -> SpanMapping:
    """Turn the HTTP SERVER and CLIENT spans of a request into call events."""
    records: list[EventRecord] = []
    rejected: list[str] = []
    ignored = untemplated = 0
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                source = _SOURCES.get(span.kind)
                attributes = _attributes(span.attributes)
                method = _method(attributes)
                if source is None or method is None:
                    ignored += 1
                    continue
                order = ("http.route", "url.template")
                if source == "client":
                    order = ("url.template", "http.route")
                route = _text(attributes, *order)
                if route is None:
                    untemplated += 1
                    continue
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    rejected.append("trace_id must be 16 bytes and span_id 8 bytes")
                    continue
                event = _span_event(
                    span, attributes, source=source, method=method, route=route, resource=resource
                )
                parsed = to_record(event, now=now)
                if isinstance(parsed, Rejected):
                    rejected.append(parsed.reason)
                elif isinstance(parsed, EventRecord):  # a span is always a call event
                    records.append(parsed)
    return SpanMapping(tuple(records), tuple(rejected), ignored, untemplated)


def encode_response(mapping: SpanMapping, encoding: Encoding) -> bytes:
    """``ExportTraceServiceResponse``; ``partial_success`` only when something was not taken."""
    response = ExportTraceServiceResponse()
    message = mapping.message()
    if message or mapping.rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=len(mapping.rejected), error_message=message)
        )
    if encoding == "protobuf":
        return response.SerializeToString()
    return json.dumps(json_format.MessageToDict(response), separators=(",", ":")).encode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_status(http_status: int, message: str, encoding: Encoding) -> bytes:
    """The ``google.rpc.Status`` body of a failed export (code + message).

    Written by hand (two fields) so the server needs no googleapis-common-protos.
    """
    code = _RPC_CODES.get(http_status, _RPC_INTERNAL)
    if encoding == "json":
        return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
