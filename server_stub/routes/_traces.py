"""POST /v1/traces: OTLP/HTTP trace export (protobuf or JSON, gzip), mapped to call events.

Per the OTLP/HTTP specification: the request is an ``ExportTraceServiceRequest`` as
``application/x-protobuf`` or ``application/json``, optionally ``Content-Encoding:
gzip``; success is 200 with an ``ExportTraceServiceResponse`` in the same encoding,
whose ``partial_success`` counts the spans that were rejected (and carries warnings);
a failure is answered with a ``google.rpc.Status`` body in the same encoding (JSON when
the request's type was not understood), with 400 for bad data (not retryable), 401 for
a missing app key, and 503 plus ``Retry-After`` when the database is busy or down
(retryable). Auth is an app key, as for POST /v1/events: set
``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<app key>``.

Which spans become events, and how, is `server_stub.domain._otlp` (docs/events.md).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from errdiscount_sdk.wire import TRACES_PATH

from .._state import ServerState
from ..domain._otlp import (
    Encoding,
    OtlpInvalid,
    decode_request,
    encode_response,
    encode_status,
    map_spans,
)
from ..web._encoded import read_encoded
from ..web._problems import HttpProblem

__all__ = ["MAX_TRACES_BYTES", "MAX_TRACES_DECODED_BYTES", "traces_routes"]

log = logging.getLogger("server_stub.events")

#: one export request as sent, and after gzip decompression
MAX_TRACES_BYTES = 4 * 1024 * 1024
MAX_TRACES_DECODED_BYTES = 16 * 1024 * 1024
_MEDIA: dict[str, Encoding] = {"application/x-protobuf": "protobuf", "application/json": "json"}
_CONTENT_TYPE: dict[Encoding, str] = {
    "protobuf": "application/x-protobuf",
    "json": "application/json",
}


def _encoding_of(request: Request) -> Encoding | None:
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return _MEDIA.get(media)


def _status(problem: HttpProblem, encoding: Encoding) -> Response:
    return Response(
        encode_status(problem.status, problem.message, encoding),
        status_code=problem.status,
        media_type=_CONTENT_TYPE[encoding],
        headers=problem.headers,
    )


def traces_routes(state: ServerState) -> list[BaseRoute]:
    async def export(request: Request) -> Response:
        encoding = _encoding_of(request)
        answer: Encoding = encoding or "json"
        try:
            app = state.keys.require_app(request)
            if encoding is None:
                raise HttpProblem(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Send application/x-protobuf or application/json.",
                    "Use an OTLP/HTTP exporter.",
                )
            body = await read_encoded(
                request, limit=MAX_TRACES_BYTES, decoded_limit=MAX_TRACES_DECODED_BYTES
            )
            try:
                export_request = decode_request(body, encoding)
            except OtlpInvalid as exc:
                raise HttpProblem(
                    400, "INVALID_OTLP", str(exc), "Send a valid export request."
                ) from None
            mapping = map_spans(export_request, now=datetime.now(UTC))
            if mapping.records:
                await state.db(state.store.ingest_events, list(mapping.records))
        except HttpProblem as problem:
            return _status(problem, answer)
        if mapping.rejected or mapping.untemplated:
            log.info("app %s: OTLP export: %s", app, mapping.message())
        return Response(
            encode_response(mapping, answer), status_code=200, media_type=_CONTENT_TYPE[answer]
        )

    return [Route(TRACES_PATH, export, methods=["POST"])]
