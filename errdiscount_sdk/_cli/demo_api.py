"""The demo's "payment API": a provider that fails the way the seed describes.

Built on the standard library's `http.server` so the demo needs nothing beyond
the server extra; it runs in a thread on a free loopback port.

- ``GET /api/balance`` is flaky: the first call drops the connection (a network
  failure), the second answers 503 with ``Retry-After: 1``, the third succeeds.
- ``POST /api/pay`` refuses with ``PAY_001`` (insufficient balance) and, as the
  provider's compensation policy says, a discount token and an ``alert_url``
  minted by the redemption server's admin API.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["PAY_MESSAGE", "PAY_SUGGESTION", "PaymentApi", "run_payment_api"]

Minter = Callable[[str], dict[str, Any]]

#: what the provider says about PAY_001, per language, for the voucher's popup
PAY_MESSAGE = {"en": "Insufficient card balance.", "zh-CN": "银行卡余额不足。"}
PAY_SUGGESTION = {
    "en": "Change the payment method or top up, then retry.",
    "zh-CN": "请更换支付方式或充值后重试。",
}


class PaymentApi:
    """Counts what the demo's client did to it, so the tour can show it."""

    def __init__(self, mint: Minter) -> None:
        self.mint = mint
        self.balance_calls = 0
        self.pay_idempotency_keys: list[str] = []
        self.lock = threading.Lock()


def _handler(api: PaymentApi) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tour prints what matters

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/api/balance":
                self._send(404, {"error_code": "NOT_FOUND", "message": "No such endpoint"}, {})
                return
            with api.lock:
                api.balance_calls += 1
                call = api.balance_calls
            if call == 1:
                # Weak mobile signal: the connection dies before any answer.
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if call == 2:
                self._send(
                    503,
                    {"error_code": "UPSTREAM_BUSY", "message": "Bank gateway busy"},
                    {"Retry-After": "1"},
                )
                return
            self._send(200, {"balance": "12.50", "currency": "CNY"}, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length, 65536))
            if self.path != "/api/pay":
                self._send(404, {"error_code": "NOT_FOUND", "message": "No such endpoint"}, {})
                return
            with api.lock:
                api.pay_idempotency_keys.append(self.headers.get("Idempotency-Key", ""))
            issued = api.mint("user-42")
            self._send(
                402,
                {
                    "error_code": "PAY_001",
                    "message": "银行卡余额不足 (insufficient card balance)",
                    "suggestion": "Change the payment method or top up, then retry",
                    "discount_token": issued["token"],
                    "alert_url": issued["alert_url"],
                },
                {},
            )

    return Handler


@contextlib.contextmanager
def run_payment_api(mint: Minter) -> Iterator[tuple[str, PaymentApi]]:
    """Serve the payment API on a free loopback port; yields (base URL, counters)."""
    api = PaymentApi(mint)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="demo-payment-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
