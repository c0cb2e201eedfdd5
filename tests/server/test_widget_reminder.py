"""The next-login reminder (ErrDiscount.showPending) in real Chromium, and honest copy.

Browser test module: no async tests (Playwright's sync API runs its own loop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from server_stub.frontend._i18n import catalogues
from tests.support.browser import LiveServer

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"  # copied to docs/images by hand
DIALOG = "[role=dialog]"
SHOW = """async ([token, lang]) => {
  const result = await ErrDiscount.showPending({
    serverUrl: location.origin, sessionToken: token, lang: lang});
  return {shown: result.shown, reason: result.reason};
}"""


def text(lang: str, key: str, **values: object) -> str:
    return catalogues().text(lang, key, **values)


def session(server: LiveServer, subject: str) -> str:
    response = httpx.post(
        f"{server.base_url}/v1/sessions", json={"subject": subject}, headers=server.admin
    )
    assert response.status_code == 201
    token: str = response.json()["session_token"]
    return token


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_reminder_shows_once_redeems_in_one_click_and_is_marked_seen(
    page: Any, live_server: LiveServer, lang: str
) -> None:
    live_server.load_codes("WELCOME-BACK-5")
    live_server.issue(subject="user-1", message={"en": "Payment failed", "zh-CN": "支付失败"})
    live_server.issue(subject="someone-else")
    token = session(live_server, "user-1")
    page.goto(f"{live_server.base_url}/demo?lang={lang}")
    assert page.evaluate(SHOW, [token, lang]) == {"shown": True, "reason": None}
    dialog = page.locator(f"{DIALOG}[data-errdiscount-reminder=true]")
    dialog.wait_for()
    assert page.locator(".errdiscount-title").inner_text() == text(lang, "widget.reminder_title")
    body = page.locator(".errdiscount-body").inner_text()
    problem = "Payment failed" if lang == "en" else "支付失败"
    assert problem in body
    assert body.startswith(text(lang, "widget.reminder_body", problem=problem, summary="")[:8])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"reminder-{lang}.png"))
    page.click(".errdiscount-redeem")
    status = page.locator(".errdiscount-status[data-outcome=success]")
    status.wait_for()
    # A coupon code shown on screen with no sink configured: the grant is the server's own.
    assert text(lang, "widget.success") in status.inner_text()
    assert page.locator(".errdiscount-code").inner_text() == "WELCOME-BACK-5"
    assert live_server.redemptions() == 1
    mine = httpx.get(
        f"{live_server.base_url}/v1/me/compensations",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert mine["pending"] == []  # redeemed, so no longer pending
    page.click(".errdiscount-dismiss")
    again = page.evaluate(SHOW, [token, lang])
    assert again == {"shown": False, "reason": "nothing_pending"}


def test_seen_reminders_are_not_shown_again_and_bad_sessions_show_nothing(
    page: Any, live_server: LiveServer
) -> None:
    live_server.issue(subject="user-2")
    token = session(live_server, "user-2")
    page.goto(f"{live_server.base_url}/demo")
    assert page.evaluate(SHOW, [token, "en"])["shown"] is True
    page.click(".errdiscount-dismiss")
    assert page.evaluate(SHOW, [token, "en"]) == {"shown": False, "reason": "nothing_pending"}
    forged = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    assert page.evaluate(SHOW, [forged, "en"]) == {"shown": False, "reason": "session_refused"}


def test_a_credit_nobody_acknowledged_says_it_will_be_credited_shortly(
    page: Any, live_server: LiveServer
) -> None:
    live_server.issue(
        subject="user-3", compensation={"kind": "points", "amount": 50, "unit": "points"}
    )
    token = session(live_server, "user-3")
    page.goto(f"{live_server.base_url}/demo")
    assert page.evaluate(SHOW, [token, "en"])["shown"] is True
    page.click(".errdiscount-redeem")
    status = page.locator(".errdiscount-status[data-outcome=success]")
    status.wait_for()
    assert status.get_attribute("data-grant-delivery") == "pending"
    assert text("en", "widget.success_pending") in status.inner_text()
    assert text("en", "widget.success") not in status.inner_text()
    # Nor "50 points have been credited": that is the same claim.
    assert text("en", "widget.points", points=50) not in status.inner_text()
    assert "credited." not in status.inner_text()
