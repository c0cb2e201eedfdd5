"""The widget (server_stub/frontend/static/errdiscount.js) in real Chromium against the real server."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from errdiscount_sdk import AlertUrlPolicy, CompensationPolicy, UnsafeAlertUrl
from server_stub.frontend._demo_pages import DEMO_MESSAGE, DEMO_SUGGESTION
from server_stub.frontend._format import CURRENCIES, format_amount, format_datetime
from server_stub.frontend._i18n import catalogues
from tests.support.browser import ConsoleLog, LiveServer
from tests.support.server import serve

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
DIALOG = "[role=dialog]"
REDEEM = ".errdiscount-redeem"

# Calls the widget with a payload, from the page, with the server's host allowed.
HANDLE = """async ([payload, extra]) => {
  const host = location.hostname;
  window.__events = [];
  const result = await ErrDiscount.handleError(payload, Object.assign({
    serverUrl: location.origin, lang: document.documentElement.lang,
    allowedHosts: [host], httpAllowedHosts: [host],
    onRedeemed: (r) => window.__events.push(["redeemed", r]),
    onDismiss: (d) => window.__events.push(["dismissed", d]),
  }, extra || {}));
  return {shown: result.shown, reason: result.reason};
}"""


def text(lang: str, key: str, **values: object) -> str:
    return catalogues().text(lang, key, **values)


def open_popup(page: Any, server: LiveServer, payload: dict[str, Any], lang: str = "en") -> Any:
    page.goto(f"{server.base_url}/demo?lang={lang}")
    result = page.evaluate(HANDLE, [payload, None])
    assert result == {"shown": True, "reason": None}
    return page.locator(DIALOG)


def flat_payload(issued: dict[str, Any]) -> dict[str, Any]:
    return {
        "error_code": "PAY_001",
        "message": "Insufficient balance",
        "suggestion": "Top up",
        "discount_token": issued["token"],
        "alert_url": issued["alert_url"],
    }


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_demo_error_popup_redeem_success(page: Any, live_server: LiveServer, lang: str) -> None:
    live_server.load_codes("SORRY-5-ABC")
    page.goto(f"{live_server.base_url}/demo?lang={lang}")
    assert page.locator("h1").inner_text() == text(lang, "demo.title")
    page.click("[data-errdiscount-pay]")
    dialog = page.locator(DIALOG)
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    title_id = dialog.get_attribute("aria-labelledby")
    assert page.locator(f"#{title_id}").inner_text() == text(lang, "alert.title")
    desc_id = dialog.get_attribute("aria-describedby")
    # What the server's (default) compensation policy gives for the demo's PAY_001.
    comp = CompensationPolicy.default().decide("PAY_001", category="business", severity="minor")
    assert comp.compensation is not None
    amount = format_amount(comp.compensation.amount, comp.compensation.unit, lang)
    summary = text(lang, f"summary.{comp.compensation.kind}", amount=amount)
    assert text(lang, "alert.body", summary=summary) in page.locator(f"#{desc_id}").inner_text()
    # The provider's own words for PAY_001, not the catalogue's generic text.
    assert page.locator(f"{DIALOG} .errdiscount-explanation").inner_text() == DEMO_MESSAGE[lang]
    assert page.locator(f"{DIALOG} .errdiscount-suggestion").inner_text() == DEMO_SUGGESTION[lang]
    assert page.locator(REDEEM).inner_text() == text(lang, "widget.redeem")
    assert page.evaluate("document.activeElement.className") == "errdiscount-redeem"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"popup-{lang}.png"))

    page.click(REDEEM)
    status = page.locator(".errdiscount-status[data-outcome=success]")
    status.wait_for()
    assert text(lang, "widget.success") in status.inner_text()
    assert page.locator(".errdiscount-code").inner_text() == "SORRY-5-ABC"
    page.screenshot(path=str(ARTIFACTS / f"popup-redeemed-{lang}.png"))
    assert page.locator("[data-errdiscount-demo-status]").inner_text() == text(
        lang, "demo.redeemed"
    )
    assert live_server.redemptions() == 1


HOSTILE = '"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> \'q\' &amp;'


def test_a_hostile_provider_message_renders_as_inert_text(
    page: Any, live_server: LiveServer, console: ConsoleLog
) -> None:
    issued = live_server.issue(message={"en": HOSTILE}, suggestion=HOSTILE)
    dialog = open_popup(page, live_server, flat_payload(issued))
    assert dialog.locator(".errdiscount-explanation").inner_text() == HOSTILE
    assert dialog.locator(".errdiscount-suggestion").inner_text() == HOSTILE
    assert dialog.locator("script, img").count() == 0
    assert page.evaluate("window.__pwned") is None
    # The standalone page escapes the same text on the server.
    page.goto(issued["alert_url"] + "?lang=en")
    assert page.locator(".errdiscount-explanation").inner_text() == HOSTILE
    assert page.locator("main script, main img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert console.csp_violations() == []


def test_second_redemption_shows_already_redeemed(
    page: Any, browser: Any, live_server: LiveServer
) -> None:
    issued = live_server.issue()
    payload = flat_payload(issued)
    open_popup(page, live_server, payload)
    # A second tab shows the same (still pending) offer before the first redeems.
    other = browser.new_page()
    try:
        open_popup(other, live_server, payload, lang="zh-CN")
        page.click(REDEEM)
        page.locator(".errdiscount-status[data-outcome=success]").wait_for()
        other.click(REDEEM)
        failure = other.locator(".errdiscount-status[data-outcome=already_redeemed]")
        failure.wait_for()
        assert failure.inner_text() == text("zh-CN", "widget.already_redeemed")
        assert other.locator(REDEEM).is_hidden()
    finally:
        other.close()
    # Opening the alert again: the server already says "redeemed", no Redeem button.
    page.keyboard.press("Escape")
    page.evaluate(HANDLE, [payload, None])
    body = page.locator(f"{DIALOG} .errdiscount-body").inner_text()
    assert body.startswith("This compensation (") and body.endswith("has already been redeemed.")
    # Said once: the status line does not repeat the body; no apology, no "try again".
    assert page.locator(".errdiscount-status").inner_text() == ""
    assert page.locator(".errdiscount-title").inner_text() == text("en", "page.title")
    assert page.locator(f"{DIALOG} .errdiscount-suggestion").count() == 0
    assert page.locator(REDEEM).is_hidden()
    assert live_server.redemptions() == 1


def test_double_click_and_repeated_clicks_redeem_once(page: Any, live_server: LiveServer) -> None:
    posts: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: posts.append(r.headers) if r.url.endswith("/v1/redemptions") else None,
    )
    open_popup(page, live_server, flat_payload(live_server.issue()))
    page.dblclick(REDEEM)
    # Clicks fired in one task, before any answer can arrive, are ignored too.
    page.evaluate(
        "() => { const b = document.querySelector('.errdiscount-redeem');"
        " b.click(); b.click(); b.click(); }"
    )
    page.locator(".errdiscount-status[data-outcome]").wait_for()
    assert page.locator(".errdiscount-status").get_attribute("data-outcome") == "success"
    assert len(posts) == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", posts[0]["idempotency-key"])
    assert live_server.redemptions() == 1
    events = page.evaluate("window.__events")
    assert [name for name, _ in events] == ["redeemed"]


def test_retry_after_a_failure_reuses_the_idempotency_key(
    page: Any, live_server: LiveServer
) -> None:
    keys: list[str] = []
    calls = {"n": 0}

    def flaky(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        calls["n"] += 1
        if calls["n"] == 1:
            route.abort("connectionreset")  # the first answer is lost on the way
        else:
            route.continue_()

    page.route("**/v1/redemptions", flaky)
    open_popup(page, live_server, flat_payload(live_server.issue()))
    page.click(REDEEM)
    retry = page.locator(".errdiscount-status[data-outcome=retry]")
    retry.wait_for()
    assert retry.inner_text() == text("en", "widget.failed")
    page.click(REDEEM)
    page.locator(".errdiscount-status[data-outcome=success]").wait_for()
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert live_server.redemptions() == 1


class Evil:
    """A second real server standing in for an attacker's host; counts requests."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        async def anything(request: Request) -> Response:
            self.hits.append(request.url.path)
            return JSONResponse({"title": "pwned", "body": "<img src=x onerror=alert(1)>"})

        self.app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])


@pytest.fixture
def evil() -> Iterator[tuple[Evil, str]]:
    server = Evil()
    with serve(server.app, host="127.0.0.2") as base:
        yield server, base


def test_unsafe_alert_urls_are_never_fetched_or_rendered(
    page: Any, live_server: LiveServer, evil: tuple[Evil, str]
) -> None:
    evil_server, evil_base = evil
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    issued = live_server.issue()
    alert_path = "/v1/alerts/" + issued["alert_id"]
    good_authority = live_server.base_url.split("://", 1)[1]
    evil_authority = evil_base.split("://", 1)[1]
    unsafe = {
        f"{evil_base}{alert_path}": "host",
        "javascript:alert(document.domain)": "scheme",
        "JaVaScRiPt:alert(1)": "scheme",
        "data:application/json,{}": "scheme",
        f"http://{good_authority}@{evil_authority}{alert_path}": "userinfo",
        f"http:\\\\{evil_authority}{alert_path}": "characters",
        f"http://{evil_authority}\\@{good_authority}{alert_path}": "characters",
        f"java\tscript:{evil_base}{alert_path}": "characters",
        f"http://{evil_authority}\n{alert_path}": "characters",
        f"http:{evil_authority}{alert_path}": "scheme",
        f"http://{good_authority}{alert_path}" + "a" * 2100: "length",
    }
    page.goto(f"{live_server.base_url}/demo")
    for url, reason in unsafe.items():
        payload = {**flat_payload(issued), "alert_url": url}
        result = page.evaluate(HANDLE, [payload, None])
        assert result == {"shown": False, "reason": f"unsafe_alert_url:{reason}"}, url
    # Same rules for RFC 9457 problem details carrying our extension members.
    problem = {
        "type": "https://errors.example/payment",
        "title": "Payment failed",
        "status": 402,
        "error_code": "PAY_001",
        "alert_url": f"{evil_base}{alert_path}",
    }
    assert page.evaluate(HANDLE, [problem, None])["reason"] == "unsafe_alert_url:host"
    # Plain http for a host not listed in httpAllowedHosts is refused too.
    strict = page.evaluate(HANDLE, [flat_payload(issued), {"httpAllowedHosts": []}])
    assert strict == {"shown": False, "reason": "unsafe_alert_url:scheme"}
    assert page.locator(DIALOG).count() == 0
    assert "pwned" not in page.content()
    assert evil_server.hits == []
    assert not [u for u in requests if "127.0.0.2" in u or "alerts" in u]


def test_rfc9457_and_fetch_response_are_recognised(page: Any, live_server: LiveServer) -> None:
    issued = live_server.issue()
    page.goto(f"{live_server.base_url}/demo?lang=zh-CN")
    problem = {
        "type": "https://errors.example/payment",
        "title": "Payment failed",
        "status": 402,
        "error_code": "PAY_001",
        "discount_token": issued["token"],
        "alert_url": issued["alert_url"],
    }
    assert page.evaluate(HANDLE, [problem, None]) == {"shown": True, "reason": None}
    assert page.locator(".errdiscount-title").inner_text() == text("zh-CN", "alert.title")
    page.keyboard.press("Escape")
    # A fetch Response (what an app has in hand): the demo API's real 402.
    shown = page.evaluate(
        """async () => {
          const response = await fetch('/demo/api/pay', {method: 'POST'});
          const result = await ErrDiscount.handleError(response, {
            allowedHosts: [location.hostname], httpAllowedHosts: [location.hostname]});
          // the widget read a clone: the app can still read the body itself
          const body = await response.json();
          return [result.shown, result.payload.errorCode, body.error_code];
        }"""
    )
    assert shown == [True, "PAY_001", "PAY_001"]
    not_errors = page.evaluate(
        """async () => [
          (await ErrDiscount.handleError({hello: 'world'}, {})).reason,
          (await ErrDiscount.handleError('text', {})).reason,
          (await ErrDiscount.handleError({error_code: 'X'}, {})).reason,
          (await ErrDiscount.handleError(new Response('<html>', {status: 502,
              headers: {'content-type': 'text/html'}}), {})).reason,
          (await ErrDiscount.handleError(new Response('x'.repeat(70000), {status: 400,
              headers: {'content-type': 'application/json'}}), {})).reason,
        ]"""
    )
    assert not_errors == [
        "not_structured",
        "not_structured",
        "no_alert_url",
        "not_structured",
        "not_structured",
    ]


def test_keyboard_only_flow(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.base_url}/demo")
    pay = page.locator("[data-errdiscount-pay]")
    for _ in range(5):  # Tab past the language links to the Pay button
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.hasAttribute('data-errdiscount-pay')"):
            break
    assert page.evaluate("document.activeElement.hasAttribute('data-errdiscount-pay')")
    page.keyboard.press("Enter")
    page.locator(DIALOG).wait_for()
    focused = "document.activeElement.className"
    assert page.evaluate(focused) == "errdiscount-redeem"
    # Tab cycles inside the dialog: Redeem → Not now → × → Redeem; Shift+Tab goes back.
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate(focused))
    assert order == ["errdiscount-dismiss", "errdiscount-close", "errdiscount-redeem"]
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "errdiscount-close"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "errdiscount-dismiss"
    # Esc closes and gives the focus back to the Pay button.
    page.keyboard.press("Escape")
    assert page.locator(DIALOG).count() == 0
    assert page.evaluate("document.activeElement.hasAttribute('data-errdiscount-pay')")
    assert page.locator("[data-errdiscount-demo-status]").inner_text() == text(
        "en", "demo.dismissed"
    )
    # Again, and redeem with the keyboard only.
    page.keyboard.press("Enter")
    page.locator(DIALOG).wait_for()
    page.keyboard.press("Enter")
    page.locator(".errdiscount-status[data-outcome=success]").wait_for()
    assert page.evaluate(focused) == "errdiscount-dismiss"
    assert page.locator(".errdiscount-dismiss").inner_text() == text("en", "widget.close")
    page.keyboard.press("Enter")
    assert page.locator(DIALOG).count() == 0
    assert pay.is_visible()
    assert page.evaluate("document.activeElement.hasAttribute('data-errdiscount-pay')")
    assert live_server.redemptions() == 1


def test_standalone_redemption_page(page: Any, live_server: LiveServer) -> None:
    live_server.load_codes("PAGE-CODE-1")
    issued = live_server.issue()
    page.set_extra_http_headers({"Accept-Language": "zh-CN,zh;q=0.9"})
    page.goto(issued["alert_url"])
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == text("zh-CN", "alert.title")
    button = page.locator("[data-errdiscount-redeem]")
    assert button.is_enabled()  # the script wired it up
    button.click()
    status = page.locator("[data-errdiscount-status][data-outcome=success]")
    status.wait_for()
    assert "PAGE-CODE-1" in status.inner_text()
    assert text("zh-CN", "widget.success") in status.inner_text()
    page.reload()
    assert page.locator("[data-errdiscount-redeem]").count() == 0
    # Read as a user: the page says once that it was redeemed, and asks for nothing.
    shown = page.locator("main").inner_text()
    assert page.locator("h1").inner_text() == text("zh-CN", "page.title")
    assert shown.count("已经领取过了") == 1
    assert "JavaScript" not in shown
    assert page.locator("noscript").count() == 0
    assert live_server.redemptions() == 1


def test_csp_violations_are_detected(
    page: Any, live_server: LiveServer, console: ConsoleLog
) -> None:
    # The detector the other tests rely on: an inline script is refused and seen.
    page.goto(f"{live_server.base_url}/demo")
    with pytest.raises(Exception, match=r"(?i)content security policy|refused"):
        page.add_script_tag(content="window.__inline = 1")
    assert page.evaluate("window.__inline") is None
    assert console.csp_violations() != []
    console.messages.clear()  # this test's violation was on purpose


def test_es_module_entry_point(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.base_url}/demo")
    kinds = page.evaluate(
        """async () => {
          const m = await import('/static/errdiscount.mjs');
          return [typeof m.ErrDiscount.handleError, m.default === globalThis.ErrDiscount,
                  typeof m.handleError, typeof m.AlertUrlPolicy];
        }"""
    )
    assert kinds == ["function", True, "function", "function"]


POLICY_CASES = [
    "https://shop.example/v1/alerts/abc",
    "https://SHOP.example./x",
    "https://shop.example:443/x",
    "https://shop.example:8443/x",
    "https://shop.example:99999/x",
    "https://shop.example:abc/x",
    "http://shop.example/x",
    "http://localhost:8000/x",
    "https://evil.example/x",
    "https://shop.example.evil.example/x",
    "https://evilshop.example/x",
    "https://shop.example@evil.example/x",
    "https://user:pw@shop.example/x",
    "https:\\\\shop.example/x",
    "https://shop.example\\@evil.example/",
    "https:shop.example/x",
    "https:/shop.example/x",
    "//shop.example/x",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://shop.example/x",
    " https://shop.example/x",
    "https://shop.example/x y",
    "https://shop.example/\u00e9",
    "https://shop.\u0435xample/x",
    "https://shop.example/\x00",
    "https://[::1]:8080/x",
    "https://[::1/x",
    "https://ex%61mple.com/x",
    "https://",
    "",
    "https://shop.example/" + "a" * 2100,
]


def test_url_policy_matches_the_python_alert_url_policy(page: Any, live_server: LiveServer) -> None:
    page.goto(f"{live_server.base_url}/demo")
    hosts = ["shop.example", "localhost", "[::1]"]
    python = AlertUrlPolicy(allowed_hosts=hosts, http_allowed_hosts=["localhost"])
    strict_ports = AlertUrlPolicy(allowed_hosts=hosts, allowed_ports={8080})
    verdicts = page.evaluate(
        """([cases, hosts]) => {
          const p = new ErrDiscount.AlertUrlPolicy({allowedHosts: hosts, httpAllowedHosts: ['localhost']});
          const q = new ErrDiscount.AlertUrlPolicy({allowedHosts: hosts, allowedPorts: [8080]});
          return cases.map((c) => [p.rejectionReason(c), q.isAllowed(c)]);
        }""",
        [POLICY_CASES, hosts],
    )
    expected = []
    for case in POLICY_CASES:
        try:
            python.check(case)
            reason = None
        except UnsafeAlertUrl as exc:
            reason = exc.reason
        expected.append([reason, strict_ports.is_allowed(case)])
    assert json.loads(json.dumps(verdicts)) == expected


AMOUNTS = [2, 1234.5, 0.5]
UNITS = [*CURRENCIES, "CHF", "XYZ", "points", "days"]


def test_amounts_and_dates_read_the_same_from_the_server_and_from_intl(
    page: Any, live_server: LiveServer
) -> None:
    """Every row of the server's table against Chromium's Intl (through the widget)."""
    page.goto(f"{live_server.base_url}/demo")
    cases = [
        [amount, unit, lang]
        for unit in UNITS
        for amount in (AMOUNTS if unit not in ("points", "days") else [2, 1234])
        for lang in ("en", "zh-CN")
    ]
    browser = page.evaluate(
        "(cases) => cases.map(([a, u, l]) => ErrDiscount.formatAmount(a, u, l))", cases
    )
    server = [format_amount(amount, unit, lang) for amount, unit, lang in cases]
    assert list(zip(cases, browser, strict=True)) == list(zip(cases, server, strict=True))
    moments = [
        dt.datetime(2026, 12, 8, 15, 4, tzinfo=dt.UTC),
        dt.datetime(2030, 1, 8, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 9, 28, 12, 30, tzinfo=dt.UTC),
        dt.datetime(2027, 5, 1, 9, 5, tzinfo=dt.UTC),
    ]
    stamps = [[m.strftime("%Y-%m-%dT%H:%M:%SZ"), lang] for m in moments for lang in ("en", "zh-CN")]
    dates = page.evaluate(
        "(cases) => cases.map(([t, l]) => ErrDiscount.formatDate(t, l, 'UTC'))", stamps
    )
    assert dates == [format_datetime(m, lang) for m in moments for lang in ("en", "zh-CN")]


@pytest.fixture
def shanghai_page(browser: Any, console: ConsoleLog) -> Iterator[Any]:
    """A page whose reader lives in UTC+8 (the browser's own time zone)."""
    context = browser.new_context(timezone_id="Asia/Shanghai")
    opened = context.new_page()
    opened.on("console", lambda message: console.messages.append(message.text))
    opened.on("pageerror", lambda error: console.messages.append(f"pageerror: {error}"))
    try:
        yield opened
    finally:
        context.close()
    assert console.csp_violations() == []
    assert [m for m in console.messages if m.startswith("pageerror")] == []


def test_the_page_shows_the_expiry_in_the_reader_s_zone_once_scripted(
    shanghai_page: Any, live_server: LiveServer
) -> None:
    issued = live_server.issue()
    shanghai_page.goto(issued["alert_url"] + "?lang=zh-CN")
    shown = shanghai_page.locator("main time")
    local = shanghai_page.evaluate(
        "(t) => ErrDiscount.formatDate(t, 'zh-CN')", issued["expires_at"]
    )
    assert shown.inner_text() == local and "GMT+8" in local
    assert shown.get_attribute("datetime") == issued["expires_at"]  # the server's UTC value


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_popup_writes_amounts_and_the_expiry_with_intl(
    shanghai_page: Any, live_server: LiveServer, lang: str
) -> None:
    page = shanghai_page
    issued = live_server.issue(
        compensation={"kind": "service_credit", "amount": 1234.5, "unit": "USD"}
    )
    dialog = open_popup(page, live_server, flat_payload(issued), lang=lang)
    shown = "$1,234.50" if lang == "en" else "US$1,234.50"
    assert shown in dialog.locator(".errdiscount-body").inner_text()
    assert "USD" not in dialog.inner_text()  # no "1234.5 USD"
    # The reader's time zone (the browser's), named.
    expires = dialog.locator(".errdiscount-expires").inner_text()
    local = page.evaluate(
        "(t) => ErrDiscount.formatDate(t, document.documentElement.lang)", issued["expires_at"]
    )
    assert expires == text(lang, "widget.expires") + " " + local
    assert "GMT+8" in local
    page.click(REDEEM)
    status = page.locator(".errdiscount-status[data-outcome=success]")
    status.wait_for()
    # No sink told anyone about this credit: neither "added" nor "a credit of ... has been
    # added", only "will be credited shortly".
    assert status.get_attribute("data-grant-delivery") == "pending"
    assert status.inner_text() == text(lang, "widget.success_pending")
    assert text(lang, "widget.credit", amount=shown) not in status.inner_text()


def test_every_page_has_an_icon_and_loads_without_a_console_error(
    page: Any, live_server: LiveServer, console: ConsoleLog
) -> None:
    issued = live_server.issue()
    failures: list[str] = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
    icons = []
    for url in (
        f"{live_server.base_url}/demo",
        issued["alert_url"] + "?lang=zh-CN",
        f"{live_server.base_url}/v1/alerts/{'A' * 22}",
    ):
        page.goto(url, wait_until="networkidle")
        icons.append(
            page.evaluate(
                """async () => {
                  const link = document.querySelector("link[rel=icon]");
                  const answer = await fetch(link.href);
                  return [new URL(link.href).pathname, answer.status,
                          answer.headers.get("content-type")];
                }"""
            )
        )
    assert icons == [["/favicon.ico", 200, "image/x-icon"]] * 3
    # The not-found page is a 404 on purpose; nothing else failed (no favicon 404).
    assert failures == [f"{live_server.base_url}/v1/alerts/{'A' * 22}"]
    errors = [m for m in console.messages if "Failed to load resource" in m]
    assert len(errors) <= 1 and all("404" in m for m in errors)  # the not-found page itself
