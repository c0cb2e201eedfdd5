"""``/dashboard`` in real Chromium: sign-in, the charts, the seed's suspect, zh-CN, no CSP noise.

The `page` fixture (tests/support/browser.py) fails a test on any CSP violation or page
error; these tests also refuse any console error. The browser fixture is module-scoped,
so this module holds no async test. Screenshots go to test-artifacts/ (copied to
docs/images by hand, as the widget's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server_stub.frontend._dashboard import COOKIE_NAME
from server_stub.frontend._i18n import catalogues
from tests.server.test_dashboard import dashboard_app, fixture_reports
from tests.support.browser import ADMIN_KEY
from tests.support.server import serve

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"  # copied to docs/images by hand


def text(lang: str, key: str, **values: object) -> str:
    return catalogues().text(lang, key, **values)


@pytest.fixture
def base(tmp_path) -> Iterator[str]:
    with serve(dashboard_app(tmp_path, fixture_reports())) as url:
        yield url


@pytest.fixture
def errors(page: Any) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    return found


def sign_in(page: Any, base: str, lang: str = "en", key: str = ADMIN_KEY) -> None:
    page.goto(f"{base}/dashboard?lang={lang}")
    assert page.url == f"{base}/dashboard/sign-in?lang={lang}"
    assert page.locator("h1").inner_text() == text(lang, "dashboard.sign_in_title")
    page.fill("#dashboard-key", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_sign_in_then_the_charts_with_the_seed_suspect(
    page: Any, base: str, errors: list[str], lang: str
) -> None:
    sign_in(page, base, lang)
    assert page.url == f"{base}/dashboard?lang={lang}"
    assert page.locator("h1").inner_text() == text(lang, "dashboard.title")
    charts = page.locator("figure svg[role=img]")
    assert charts.count() == 1 + 7 + 2
    for index in range(charts.count()):
        assert charts.nth(index).is_visible()
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 40
    # the seed's case: OS version 17.2, and nothing else, is the suspect
    suspects = page.locator("[data-suspects] li")
    assert suspects.count() == 1
    dimension = text(lang, "chart.dimension.os_version")
    assert suspects.inner_text() == text(
        lang,
        "dashboard.suspect_line",
        dimension=dimension,
        value="17.2",
        failure_share="80.0%",
        call_share="10.0%",
        lift="8.0\u00d7",
    )
    highlighted = page.locator("svg [data-suspect=true]")
    assert highlighted.count() == 1
    assert highlighted.locator("text").first.text_content() == "17.2"
    lift = text(lang, "chart.lift", lift="8.0\u00d7")
    assert f"\u25c0 {text(lang, 'chart.suspect')} \u00b7 {lift}" in highlighted.text_content()
    # accessible names: each chart is labelled by its own title
    title_id = charts.nth(1).get_attribute("aria-labelledby").split()[0]
    assert page.locator(f"[id='{title_id}']").text_content() == text(
        lang, "chart.breakdown_title", dimension=text(lang, "chart.dimension.platform")
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{lang}.png"), full_page=True)
    assert errors == []


def test_cookie_attributes_and_sign_out(page: Any, base: str, errors: list[str]) -> None:
    sign_in(page, base)
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE_NAME]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/dashboard"
    assert ADMIN_KEY not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
    page.click(".dashboard-sign-out button")
    page.wait_for_load_state()
    assert page.url.startswith(f"{base}/dashboard/sign-in")
    assert [c for c in page.context.cookies() if c["name"] == COOKIE_NAME] == []
    page.goto(f"{base}/dashboard")
    assert page.url.startswith(f"{base}/dashboard/sign-in")
    assert page.locator("svg").count() == 0
    assert errors == []


def test_the_window_selector_is_a_plain_get_form(page: Any, base: str, errors: list[str]) -> None:
    sign_in(page, base)
    page.select_option("#dashboard-since", "30d")
    page.click(".dashboard-window button")
    page.wait_for_load_state()
    assert page.url == f"{base}/dashboard?lang=en&since=30d"
    assert page.locator("#dashboard-since").input_value() == "30d"
    assert errors == []


def test_a_wrong_key_is_refused(page: Any, base: str) -> None:
    page.goto(f"{base}/dashboard/sign-in")
    page.fill("#dashboard-key", "not-the-admin-key-0123")
    with page.expect_response(lambda r: r.url.endswith("/dashboard/sign-in")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    assert page.locator("[role=alert]").inner_text() == text("en", "dashboard.wrong_key")
    assert page.locator("svg").count() == 0
    assert page.context.cookies() == []


def test_the_page_works_without_javascript(browser: Any, base: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{base}/dashboard/sign-in")
        page.fill("#dashboard-key", ADMIN_KEY)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert page.locator("figure svg").count() == 10
        assert page.locator("[data-suspects] li").count() == 1
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_the_seed_case_from_real_events(
    page: Any, tmp_path: Path, errors: list[str], lang: str
) -> None:
    """Generated events through POST /v1/events, the real report functions, the real page."""
    import datetime as dt

    from tests.support import report_fixtures as fx
    from tests.support.server_support import ADMIN_KEY as SERVER_ADMIN_KEY
    from tests.support.server_support import APP_KEY, running

    with running(tmp_path, detector_interval=0.0, dispatch=False) as url:
        fx.ingest(url, APP_KEY, fx.seed_events(dt.datetime.now(dt.UTC)))
        sign_in(page, url, lang, key=SERVER_ADMIN_KEY)
        assert page.url == f"{url}/dashboard?lang={lang}"
        suspects = page.locator("[data-suspects] li")
        assert suspects.count() == 1
        assert suspects.inner_text() == text(
            lang,
            "dashboard.suspect_line",
            dimension=text(lang, "chart.dimension.os_version"),
            value="17.2",
            failure_share="80.0%",
            call_share="10.0%",
            lift="8.0\u00d7",
        )
        highlighted = page.locator("svg [data-suspect=true]")
        assert highlighted.count() == 1
        assert highlighted.locator("text").first.text_content() == "17.2"
        assert page.locator("figure svg[role=img]").count() >= 1 + 7
    assert errors == []
