"""``GET /v1/alerts/{alert_id}``: the popup content (JSON) or a redemption page (HTML).

An ``alert_url`` names an opaque alert id that the store maps to a token the
server issued (OWASP's "ID mapped server-side" form), so the front end never
renders an attacker-chosen URL. The same resource is served as JSON for the
widget and as a standalone HTML page for a browser that opens the link;
``Accept`` decides. Language: ``?lang=`` first, then ``Accept-Language``.
The first view of either form sets the voucher's ``shown_at`` (the compensation
funnel's "shown" step, docs/analytics.md).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errdiscount_sdk.wire import MAX_TOKEN_BYTES

from ..domain._provider_text import pick_text
from ..domain._render import compensation_json, rfc3339
from ._format import format_amount, format_datetime
from ._i18n import Catalogues, catalogues, choose_language
from ._pages import Markup, escape, html_response, prefers_html, render

__all__ = ["AlertStore", "IssuedAlert", "alert_content", "alert_routes"]

ALERT_ID = re.compile(r"[A-Za-z0-9_-]{22,128}")
_CATEGORIES = ("network", "protocol", "business", "data_format")
_MAX_TOKEN = MAX_TOKEN_BYTES
_JSON_HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Accept, Accept-Language",
    "X-Content-Type-Options": "nosniff",
}


class IssuedAlert(Protocol):
    """What the store remembers about an issued token (``store.IssuedToken``)."""

    @property
    def jti(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def unit(self) -> str: ...
    @property
    def expires_at(self) -> dt.datetime: ...
    @property
    def alert_id(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def message(self) -> Mapping[str, str]: ...
    @property
    def suggestion(self) -> Mapping[str, str]: ...
    @property
    def priority(self) -> bool: ...
    @property
    def support_flag(self) -> bool: ...
    @property
    def shown_at(self) -> dt.datetime | None: ...


GrantDelivery = Callable[[Any], Awaitable[str]]
"""``redemption → "delivered" | "pending"`` (`ServerState.grant_delivery`)."""


class AlertStore(Protocol):
    """The store calls the alert endpoint needs (``server_stub.store.Store``): two reads,
    and the one write that records the first view."""

    def alert(self, alert_id: str) -> IssuedAlert | None: ...
    def redemption_by_jti(self, jti: str) -> object | None: ...
    def mark_shown(self, alert_id: str) -> bool: ...


def _claims(token: str) -> dict[str, Any]:
    # The token comes from our own store (we issued it), so its payload is read
    # without verifying the signature again; the redemption endpoint verifies.
    if len(token) > _MAX_TOKEN:
        return {}
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    segment = parts[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def _https_url(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 2048 or not value.startswith("https://"):
        return None
    if "\\" in value or any(not "!" <= ch <= "~" for ch in value):
        return None
    return value


def _summary_key(kind: str, unit: str, cat: Catalogues) -> str:
    # A service credit is money or days (token spec); each reads its own way.
    if kind == "service_credit" and unit == "days":
        return "summary.service_credit_days"
    key = f"summary.{kind}"
    return key if key in cat.keys() else "summary.coupon"  # noqa: SIM118 (not a dict)


def alert_content(
    record: IssuedAlert,
    *,
    lang: str,
    redeemed: bool,
    now: dt.datetime,
    redeem_url: str,
    texts: Catalogues | None = None,
) -> dict[str, Any]:
    """The popup content of one alert, in ``lang`` (the contract's JSON shape).

    Every value is plain text; escaping is up to whoever renders it. The error's
    explanation and suggestion are the provider's (`pick_text`) when it gave any.
    """
    cat = texts or catalogues()
    claims = _claims(record.token)
    raw_err = claims.get("err")
    err: dict[str, Any] = raw_err if isinstance(raw_err, dict) else {}
    category = err.get("category") if err.get("category") in _CATEGORIES else "business"
    code = err.get("code") if isinstance(err.get("code"), str) else ""
    severity = err.get("severity") if isinstance(err.get("severity"), str) else ""
    # The store counts in integer units (cents); show the amount as the token states it.
    shown = compensation_json(record.kind, record.amount, record.unit)
    amount = format_amount(shown["amount"], shown["unit"], lang)
    summary = cat.text(lang, _summary_key(record.kind, shown["unit"], cat), amount=amount)
    if redeemed:
        status, body_key = "redeemed", "alert.body_redeemed"
    elif record.expires_at <= now:
        status, body_key = "expired", "alert.body_expired"
    else:
        status, body_key = "pending", "alert.body"
    return {
        "alert_id": record.alert_id,
        "lang": lang,
        "status": status,
        # The apology while there is something to offer; a used or expired voucher is
        # just "your compensation" (its body says what became of it).
        "title": cat.text(lang, "alert.title" if status == "pending" else "page.title"),
        "body": cat.text(lang, body_key, summary=summary),
        "error": {
            "code": code,
            "category": category,
            "severity": severity,
            # The provider's own words when it gave them, else the category's generic text.
            "explanation": pick_text(record.message, lang)
            or cat.text(lang, f"explanation.{category}"),
            "suggestion": pick_text(record.suggestion, lang)
            or cat.text(lang, f"suggestion.{category}"),
        },
        "compensation": {**shown, "summary": summary},
        "expires_at": rfc3339(record.expires_at),
        "terms_url": _https_url(claims.get("terms")),
        # The policy's care flags (high-value users), for the provider's follow-up.
        "priority": record.priority,
        "support_flag": record.support_flag,
        "redeem": {"method": "POST", "url": redeem_url, "token": record.token},
        "texts": cat.section(lang, "widget"),
    }


def _paragraph(css_class: str, text: str) -> Markup:
    return Markup(f'<p class="{css_class}">{escape(text)}</p>')


def _page(content: dict[str, Any], cat: Catalogues) -> str:
    lang = content["lang"]
    widget = content["texts"]
    pending = content["status"] == "pending"
    terms = ""
    if content["terms_url"] and pending:
        terms = Markup(
            f'<p><a class="errdiscount-terms" href="{escape(content["terms_url"])}" '
            f'rel="noopener noreferrer">{escape(widget["terms"])}</a></p>'
        )
    expires = dt.datetime.fromisoformat(content["expires_at"].replace("Z", "+00:00"))
    error_code = content["error"]["code"] or "-"
    meta = [f"<dt>{escape(widget['error_code'])}</dt><dd><code>{escape(error_code)}</code></dd>"]
    if content["status"] != "redeemed":  # "valid until" means nothing once it is used
        meta.append(
            f"<dt>{escape(widget['expires'])}</dt><dd><time datetime="
            f'"{escape(content["expires_at"])}">{escape(format_datetime(expires, lang))}'
            "</time></dd>"
        )
    title, story, action = content["title"], "", ""
    if pending:
        # The apology, the error's story and a Redeem button the script enables (disabled
        # until then: no dead button without JS; the noscript line says why). Redeemed or
        # expired: the body says so once; nothing to do, so no button, no request for
        # JavaScript, no error advice and no token on the page.
        story = _paragraph("errdiscount-explanation", content["error"]["explanation"])
        story += _paragraph("errdiscount-suggestion", content["error"]["suggestion"])
        action = (
            '<div class="errdiscount-actions"><button type="button" class="errdiscount-redeem" '
            f"data-errdiscount-redeem disabled>{escape(widget['redeem'])}</button></div>"
            f"<noscript><p>{escape(cat.text(lang, 'page.noscript'))}</p></noscript>"
        )
    return render(
        "alert.html",
        {
            "lang": lang,
            "page_title": cat.text(lang, "page.title"),
            "status": content["status"],
            "redeem_url": content["redeem"]["url"] if pending else "",
            "token": content["redeem"]["token"] if pending else "",
            "texts_json": json.dumps(widget if pending else {}, ensure_ascii=False),
            "title": title,
            "body": content["body"],
            "story": Markup(story),
            "meta": Markup("".join(meta)),
            "terms": terms,
            "action": Markup(action),
        },
    )


def _not_found(request: Request, lang: str, frame_ancestors: Iterable[str]) -> Response:
    if prefers_html(request.headers.get("accept")):
        cat = catalogues()
        body = render(
            "not_found.html",
            {
                "lang": lang,
                "title": cat.text(lang, "page.not_found_title"),
                "body": cat.text(lang, "page.not_found_body"),
            },
        )
        return html_response(body, status_code=404, frame_ancestors=frame_ancestors)
    payload = {
        "error_code": "ALERT_NOT_FOUND",
        "message": "No alert with this id.",
        "suggestion": "Check the alert_url; alerts exist only for tokens this server issued.",
    }
    return JSONResponse(payload, status_code=404, headers=_JSON_HEADERS)


def alert_routes(
    get_store: Callable[[], AlertStore],
    *,
    frame_ancestors: Iterable[str] = (),
    public_url: str | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    grant_delivery: GrantDelivery | None = None,
) -> list[Route]:
    """The ``GET /v1/alerts/{alert_id}`` route.

    Args:
        get_store: returns the store (called per request, so the app may open it lazily).
        frame_ancestors: CSP ``frame-ancestors`` sources of the HTML page (empty: none).
        public_url: base of the redemption URL handed out; None: the request's base URL.
        clock: "now", to decide whether an alert has expired.
        grant_delivery: for a redeemed alert, whether the grant reached the user
            (``delivered``) or not yet (``pending``): the ``grant_delivery`` member.
    """
    ancestors = tuple(frame_ancestors)

    async def get_alert(request: Request) -> Response:
        lang = choose_language(
            request.query_params.get("lang"), request.headers.get("accept-language")
        )
        alert_id = request.path_params["alert_id"]
        if not ALERT_ID.fullmatch(alert_id):
            return _not_found(request, lang, ancestors)
        store = get_store()
        record = await run_in_threadpool(store.alert, alert_id)
        if record is None:
            return _not_found(request, lang, ancestors)
        if record.shown_at is None:
            # The funnel's "shown" step: written once; later views find it set and
            # write nothing (the UPDATE also matches only while it is unset).
            await run_in_threadpool(store.mark_shown, alert_id)
        redemption = await run_in_threadpool(store.redemption_by_jti, record.jti)
        base = (public_url or str(request.base_url)).rstrip("/")
        content = alert_content(
            record,
            lang=lang,
            redeemed=redemption is not None,
            now=clock(),
            redeem_url=f"{base}/v1/redemptions",
        )
        if redemption is not None and grant_delivery is not None:
            content["grant_delivery"] = await grant_delivery(redemption)
        if prefers_html(request.headers.get("accept")):
            return html_response(_page(content, catalogues()), frame_ancestors=ancestors)
        return JSONResponse(content, headers={**_JSON_HEADERS, "Content-Language": lang})

    return [Route("/v1/alerts/{alert_id}", get_alert, methods=["GET"], name="get_alert")]
