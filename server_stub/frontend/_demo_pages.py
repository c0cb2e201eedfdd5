"""``GET /demo`` and ``POST /demo/api/pay``: a tiny shop whose payment API always fails.

The failure is the seed's: HTTP 402 with the flat payload ``PAY_001`` carrying
a fresh discount token and its ``alert_url`` (minted by the server's own issuer
for a demo subject), so the widget on the page can do its job end to end.
Enabled only when the server's ``demo`` setting is on: it mints real tokens.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._format import format_amount
from ._i18n import catalogues, choose_language
from ._pages import html_response, render

__all__ = ["DEMO_MESSAGE", "DEMO_SUBJECT", "DEMO_SUGGESTION", "Mint", "demo_routes"]

DEMO_SUBJECT = "demo-user"
#: the provider's own words for PAY_001, per language: the popup shows them
DEMO_MESSAGE = {"en": "Insufficient balance on the card.", "zh-CN": "银行卡余额不足。"}
DEMO_SUGGESTION = {
    "en": "Change the payment method or top up, then retry.",
    "zh-CN": "请更换支付方式或充值后重试。",
}

#: what the demo's Pay button says it charges (amount, currency)
DEMO_PRICE = (50, "USD")

Mint = Callable[[Request], Awaitable[tuple[str, str]]]
"""Issues a demo token for the request; returns ``(discount_token, alert_url)``."""


def demo_routes(mint: Mint, *, frame_ancestors: Iterable[str] = ()) -> list[Route]:
    """The demo page and its failing payment endpoint.

    Args:
        mint: issues and records a token for `DEMO_SUBJECT`.
        frame_ancestors: CSP ``frame-ancestors`` of the page (empty: none).
    """
    ancestors = tuple(frame_ancestors)

    async def page(request: Request) -> Response:
        lang = choose_language(
            request.query_params.get("lang"), request.headers.get("accept-language")
        )
        cat = catalogues()
        body = render(
            "demo.html",
            {
                "lang": lang,
                "title": cat.text(lang, "demo.title"),
                "intro": cat.text(lang, "demo.intro"),
                "pay": cat.text(lang, "demo.pay", amount=format_amount(*DEMO_PRICE, lang)),
                "language_label": cat.text(lang, "demo.language"),
                "texts_json": json.dumps(cat.section(lang, "demo"), ensure_ascii=False),
            },
        )
        return html_response(body, frame_ancestors=ancestors)

    async def pay(request: Request) -> Response:
        token, alert_url = await mint(request)
        payload: dict[str, Any] = {
            "error_code": "PAY_001",
            "message": DEMO_MESSAGE["en"],
            "suggestion": DEMO_SUGGESTION["en"],
            "discount_token": token,
            "alert_url": alert_url,
        }
        return JSONResponse(payload, status_code=402, headers={"Cache-Control": "no-store"})

    return [
        Route("/demo", page, methods=["GET"], name="demo"),
        Route("/demo/api/pay", pay, methods=["POST"], name="demo_pay"),
    ]
