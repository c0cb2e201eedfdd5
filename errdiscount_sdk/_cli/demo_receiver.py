"""The demo's CRM stand-in: a loopback webhook receiver that checks Standard Webhooks signatures.

Runs in the demo's own process (a stdlib HTTP server on a thread); the redemption
server delivers its outbox here (``--webhook-url``). Each request is verified like a
receiver should: the HMAC-SHA256 of ``id.timestamp.body`` with the shared ``whsec_``
secret must match one of the ``v1,`` signatures (constant-time), and the timestamp
must be within 5 minutes; deliveries are deduplicated on ``webhook-id``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

from .._model.wire import (
    WEBHOOK_ID_HEADER,
    WEBHOOK_SECRET_PREFIX,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
)

__all__ = ["DemoReceiver", "demo_receiver"]

TOLERANCE_SECONDS = 300
MAX_BODY = 64 * 1024


class DemoReceiver:
    def __init__(self) -> None:
        self.secret = WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
        self.url = ""
        self.events: dict[str, dict[str, Any]] = {}  # webhook-id → verified payload
        self.refused = 0
        self._arrived = threading.Condition()

    def verify(self, headers: Any, body: bytes) -> dict[str, Any] | None:
        event_id = headers.get(WEBHOOK_ID_HEADER) or ""
        stamp = headers.get(WEBHOOK_TIMESTAMP_HEADER) or ""
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE_SECONDS:
            return None
        key = base64.b64decode(self.secret[len(WEBHOOK_SECRET_PREFIX) :])
        expected = base64.b64encode(
            hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        offered = [
            part.split(",", 1)[1]
            for part in (headers.get(WEBHOOK_SIGNATURE_HEADER) or "").split()
            if part.startswith("v1,")
        ]
        if not any(hmac.compare_digest(expected, sig) for sig in offered):
            return None
        payload = json.loads(body)
        return payload if isinstance(payload, dict) else None

    def record(self, event_id: str, payload: dict[str, Any]) -> None:
        with self._arrived:
            self.events.setdefault(event_id, payload)  # a redelivery is a duplicate
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.events) >= count, timeout)


@contextlib.contextmanager
def demo_receiver() -> Iterator[DemoReceiver]:
    receiver = DemoReceiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY))
            payload = receiver.verify(self.headers, body)
            if payload is None:
                receiver.refused += 1
                self.send_response(400)
            else:
                receiver.record(self.headers.get(WEBHOOK_ID_HEADER) or "", payload)
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
