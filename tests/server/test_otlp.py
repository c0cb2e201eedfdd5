"""POST /v1/traces: the real OpenTelemetry SDK + OTLP/HTTP exporter, and OTLP/JSON by hand."""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from errdiscount_sdk.events import CallEvent, parse_event
from server_stub.domain._otlp import classify
from tests.support.server_support import APP_KEY, running

APP = {"Authorization": f"Bearer {APP_KEY}"}
RESOURCE = Resource.create(
    {"service.name": "pay-api", "service.version": "3.2.1", "os.type": "linux", "os.version": "6.1"}
)


@pytest.fixture
def spans() -> Iterator[list[ReadableSpan]]:
    """Finished spans of a provider handling three requests and making one call."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /api/pay", kind=SpanKind.SERVER) as span:
        span.set_attributes(
            {"http.request.method": "POST", "http.route": "/api/pay", "user.id": "alice",
             "http.response.status_code": 503, "url.path": "/api/pay/123"}
        )  # fmt: skip
        with tracer.start_as_current_span("db", kind=SpanKind.CLIENT) as db:
            db.set_attribute("db.system", "postgresql")  # not HTTP: ignored
        with tracer.start_as_current_span("render"):  # INTERNAL: ignored
            pass
    with tracer.start_as_current_span("GET /api/orders/{id}", kind=SpanKind.SERVER) as span:
        span.set_attributes(
            {"http.request.method": "GET", "http.route": "/api/orders/{id}",
             "enduser.id": "bob", "http.response.status_code": 200}
        )  # fmt: skip
    with tracer.start_as_current_span("POST /api/coupon", kind=SpanKind.SERVER) as span:
        span.set_attributes(
            {"http.request.method": "POST", "http.route": "/api/coupon", "user.id": "carol",
             "http.response.status_code": 402, "errdiscount.error_code": "COUPON_EXPIRED"}
        )  # fmt: skip
    with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as span:
        span.set_attributes(
            {"http.request.method": "GET", "url.template": "/v1/rates", "user.id": "alice",
             "error.type": "timeout"}
        )  # fmt: skip
        span.set_status(Status(StatusCode.ERROR))
    yield list(memory.get_finished_spans())
    provider.shutdown()


def events_of(url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{url}/v1/events", headers=APP)
    assert answer.status_code == 200
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def test_the_real_exporter_feeds_call_events(tmp_path: Path, spans: list[ReadableSpan]) -> None:
    with running(tmp_path) as url:
        exporter = OTLPSpanExporter(
            endpoint=f"{url}/v1/traces", headers=APP, compression=Compression.Gzip, timeout=5
        )
        try:
            assert exporter.export(spans) == SpanExportResult.SUCCESS
            first = events_of(url)
            # Re-exporting the same spans is deduplicated (event ids from trace + span id).
            assert exporter.export(spans) == SpanExportResult.SUCCESS
            assert len(events_of(url)) == len(first)
        finally:
            exporter.shutdown()
    for event in first:  # mapped spans are events of the SDK's contract, like POST /v1/events
        assert isinstance(parse_event(event), CallEvent), event
    by_endpoint = {e["endpoint"]: e for e in first}
    assert set(by_endpoint) == {
        "POST /api/pay",
        "GET /api/orders/{id}",
        "POST /api/coupon",
        "GET /v1/rates",
    }
    pay = by_endpoint["POST /api/pay"]
    assert {k: pay[k] for k in ("outcome", "status", "category", "severity", "transient",
                                "source", "user_id", "platform", "os_version", "app_version")} == {
        "outcome": "error", "status": 503, "category": "protocol", "severity": "severe",
        "transient": True, "source": "provider", "user_id": "alice", "platform": "linux",
        "os_version": "6.1", "app_version": "3.2.1",
    }  # fmt: skip
    assert pay["service.name"] == "pay-api" and pay["sdk_version"].startswith("otel-python/")
    assert pay["duration_ms"] >= 0 and "/api/pay/123" not in json.dumps(first)
    orders = by_endpoint["GET /api/orders/{id}"]
    assert (orders["outcome"], orders["user_id"], orders["category"]) == ("ok", "bob", None)
    coupon = by_endpoint["POST /api/coupon"]
    assert (coupon["outcome"], coupon["category"], coupon["error_code"]) == (
        "error",
        "business",
        "COUPON_EXPIRED",
    )
    rates = by_endpoint["GET /v1/rates"]
    assert (rates["source"], rates["category"], rates["status"], rates["error.type"]) == (
        "client",
        "network",
        None,
        "timeout",
    )


def _request(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    return encode_spans(spans)


def test_partial_success_counts_rejected_spans_in_protobuf(
    tmp_path: Path, spans: list[ReadableSpan]
) -> None:
    request = _request(spans)
    server_spans = [
        s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans
        if s.kind == ProtoSpan.SPAN_KIND_SERVER
    ]  # fmt: skip
    for attribute in server_spans[0].attributes:
        if attribute.key == "user.id":
            attribute.value.string_value = "x" * 300  # over the user_id cap
    untemplated = server_spans[1]
    for attribute in untemplated.attributes:
        if attribute.key == "http.route":
            attribute.key = "url.path"
    headers = {**APP, "Content-Type": "application/x-protobuf"}
    with running(tmp_path) as url:
        answer = httpx.post(
            f"{url}/v1/traces", content=request.SerializeToString(), headers=headers
        )
        stored = events_of(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "user_id" in response.partial_success.error_message
    assert "no http.route or url.template" in response.partial_success.error_message
    assert len(stored) == 2  # coupon (server) and rates (client)


def _hex_json(spans: list[ReadableSpan]) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: lowerCamelCase, hex ids, integer enums."""
    document = json_format.MessageToDict(_request(spans))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
                span["kind"] = ProtoSpan.SpanKind.Value(span["kind"])
    return document


def test_json_encoding_round_trips_with_the_same_event_ids(
    tmp_path: Path, spans: list[ReadableSpan]
) -> None:
    document = _hex_json(spans)
    headers = {**APP, "Content-Type": "application/json"}
    with running(tmp_path) as url:
        answer = httpx.post(f"{url}/v1/traces", json=document, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {}  # everything taken: no partial_success
        by_json = {e["event_id"] for e in events_of(url)}
        # The same spans in protobuf are duplicates: ids come from trace id + span id.
        proto = httpx.post(
            f"{url}/v1/traces",
            content=gzip.compress(_request(spans).SerializeToString()),
            headers={**APP, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        assert proto.status_code == 200
        assert {e["event_id"] for e in events_of(url)} == by_json and len(by_json) == 4
        garbage = httpx.post(
            f"{url}/v1/traces",
            json={"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]},
            headers=headers,
        )
        assert garbage.status_code == 400
        assert garbage.json()["code"] == 3  # google.rpc.Code INVALID_ARGUMENT


def test_failures_answer_a_status_in_the_request_encoding(tmp_path: Path) -> None:
    with running(tmp_path) as url:
        unauthorized = httpx.post(
            f"{url}/v1/traces", content=b"", headers={"Content-Type": "application/x-protobuf"}
        )
        assert unauthorized.status_code == 401
        assert unauthorized.headers["content-type"] == "application/x-protobuf"
        assert unauthorized.content[:2] == b"\x08\x10"  # Status.code = 16 UNAUTHENTICATED
        broken = httpx.post(
            f"{url}/v1/traces",
            content=os.urandom(64) + b"\xff" * 16,
            headers={**APP, "Content-Type": "application/x-protobuf"},
        )
        assert broken.status_code == 400
        wrong_type = httpx.post(
            f"{url}/v1/traces", content=b"x", headers={**APP, "Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415 and wrong_type.json()["code"] == 3


@pytest.mark.parametrize(
    ("status", "has_code", "expected"),
    [
        (None, False, ("network", "moderate", True)),
        (503, False, ("protocol", "severe", True)),
        (500, True, ("protocol", "severe", False)),
        (402, True, ("business", "minor", False)),
        (404, True, ("protocol", "moderate", False)),  # the status owns its meaning
        (429, False, ("protocol", "minor", True)),
        (418, False, ("protocol", "moderate", False)),
        (200, False, ("protocol", "moderate", False)),
    ],
)
def test_classification_rules(
    status: int | None, has_code: bool, expected: tuple[str, str, bool]
) -> None:
    category, severity, transient = classify(status, has_error_code=has_code)
    assert (category.value, severity.value, transient) == expected
