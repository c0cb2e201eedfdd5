"""``/dashboard`` over HTTP: who may see it, the cookie, the headers, the rendered reports.

The real server (create_app on uvicorn, SQLite in tmp_path). The reports come from a
loader serving the contract's documents (tests/support/report_fixtures.py), put in front
of the default route groups, so this module tests the page and its access rules alone;
tests/server/test_dashboard_browser.py runs it in Chromium.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from errdiscount_sdk import generate_signing_key
from server_stub import Settings, create_app
from server_stub._app import DEFAULT_ROUTE_GROUPS
from server_stub.frontend._dashboard import (
    COOKIE_NAME,
    ReportUnavailable,
    contract_reports,
    dashboard_routes,
)
from server_stub.frontend._dashboard_auth import DashboardSessionInvalid, DashboardSessions
from server_stub.frontend._i18n import catalogues
from server_stub.web._named_keys import NamedKey
from tests.support import report_fixtures as fx
from tests.support.browser import ADMIN_KEY
from tests.support.server import serve

SVG = "{http://www.w3.org/2000/svg}"


def fixture_reports(*, hostile: bool = False, missing: tuple[str, ...] = ()) -> Any:
    def load(report: str, store: Any, params: Any, now: Any) -> Any:
        if report in missing:
            raise ReportUnavailable(report)
        document = {
            "breakdown": fx.seed_breakdowns,
            "timeseries": fx.timeseries,
            "compensation": fx.compensation,
            "outcomes": fx.outcomes,
        }[report]()
        return fx.hostile(document) if hostile else document

    return load


def dashboard_app(tmp_path: Any, loader: Any, **settings: Any) -> Any:
    config = Settings(
        database=f"sqlite:///{tmp_path / 'server.db'}",
        admin_key=settings.pop("admin_key", ADMIN_KEY),
        access_log=False,
        **settings,
    )

    def group(state: Any) -> Any:
        return dashboard_routes(state, loader=loader)

    return create_app(
        config, signing_key=generate_signing_key(), route_groups=(group, *DEFAULT_ROUTE_GROUPS)
    )


@pytest.fixture
def base(tmp_path) -> Iterator[str]:
    with serve(dashboard_app(tmp_path, fixture_reports())) as url:
        yield url


def sign_in(client: httpx.Client, key: str = ADMIN_KEY, **extra: str) -> httpx.Response:
    return client.post("/dashboard/sign-in", data={"admin_key": key, **extra})


def test_no_data_without_credentials(base) -> None:
    with httpx.Client(base_url=base) as client:
        response = client.get("/dashboard?lang=zh-CN")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/sign-in?lang=zh-CN"
        assert "<svg" not in response.text
        form = client.get("/dashboard/sign-in")
        assert form.status_code == 200
        assert 'name="admin_key" type="password"' in form.text
        client.cookies.set(COOKIE_NAME, "dash1.e30.forged")
        assert client.get("/dashboard").status_code == 303
        client.cookies.clear()
        wrong_bearer = client.get(
            "/dashboard", headers={"Authorization": "Bearer wrong-0123456789"}
        )
        assert wrong_bearer.status_code == 401
        assert "<svg" not in wrong_bearer.text


def test_the_admin_key_as_bearer_shows_the_dashboard(base) -> None:
    response = httpx.get(f"{base}/dashboard", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200
    assert response.text.count("<svg") == 1 + 7 + 2
    assert "Signed in as admin" in response.text


def test_sign_in_sets_a_strict_http_only_cookie_that_is_not_the_key(base) -> None:
    with httpx.Client(base_url=base) as client:
        response = sign_in(client, lang="zh-CN")
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard?lang=zh-CN"
        cookie = response.headers["set-cookie"]
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        assert "path=/dashboard" in attributes
        assert "secure" not in attributes  # plain http on loopback
        assert "max-age=28800" in attributes
        value = cookie.split(";", 1)[0].split("=", 1)[1]
        assert ADMIN_KEY not in cookie and value.startswith("dash1.")
        page = client.get("/dashboard?lang=zh-CN")
        assert page.status_code == 200
        assert catalogues().text("zh-CN", "dashboard.title") in page.text
        out = client.post("/dashboard/sign-out", data={"lang": "zh-CN"})
        assert out.status_code == 303
        assert "max-age=0" in out.headers["set-cookie"].lower()
        assert client.get("/dashboard").status_code == 303


def test_the_cookie_is_secure_on_https(tmp_path) -> None:
    app = dashboard_app(tmp_path, fixture_reports(), public_url="https://errdiscount.example")
    with serve(app) as url, httpx.Client(base_url=url) as client:
        cookie = sign_in(client).headers["set-cookie"].lower()
        assert "secure" in [part.strip() for part in cookie.split(";")]


def test_a_wrong_key_is_refused_and_sign_in_is_rate_limited(base) -> None:
    with httpx.Client(base_url=base) as client:
        refused = sign_in(client, "not-the-admin-key-0123")
        assert refused.status_code == 401
        assert "set-cookie" not in refused.headers
        assert catalogues().text("en", "dashboard.wrong_key") in refused.text
        statuses = [sign_in(client, "not-the-admin-key-0123").status_code for _ in range(6)]
        assert statuses[-1] == 429
        limited = sign_in(client)  # even the right key waits: the bucket is per address
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1


def test_sign_in_refuses_foreign_origins_and_other_bodies(base) -> None:
    with httpx.Client(base_url=base) as client:
        foreign = client.post(
            "/dashboard/sign-in",
            data={"admin_key": ADMIN_KEY},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403 and "set-cookie" not in foreign.headers
        as_json = client.post("/dashboard/sign-in", json={"admin_key": ADMIN_KEY})
        assert as_json.status_code == 401
        huge = client.post("/dashboard/sign-in", data={"admin_key": "x" * 5000})
        assert huge.status_code == 401
        same = client.post(
            "/dashboard/sign-in", data={"admin_key": ADMIN_KEY}, headers={"Origin": "null"}
        )
        assert same.status_code == 303


def test_pages_carry_the_strict_csp_and_security_headers(base) -> None:
    with httpx.Client(base_url=base) as client:
        sign_in(client)
        for path in ("/dashboard", "/dashboard/sign-in"):
            response = client.get(path)
            headers = response.headers
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert csp.endswith("frame-ancestors 'none'")
            assert headers["x-frame-options"] == "DENY"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["cache-control"] == "no-store"
            assert headers["referrer-policy"] == "no-referrer"
            assert "<script" not in response.text and " style=" not in response.text
            assert "http://" not in response.text.replace("http://www.w3.org/2000/svg", "")


def test_the_page_names_the_suspect_and_only_it(base) -> None:
    page = httpx.get(f"{base}/dashboard", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    items = re.findall(r"<ul class=\"dashboard-suspects\" data-suspects>(.*?)</ul>", page.text)
    assert len(items) == 1
    assert re.findall(r"<li>(.*?)</li>", items[0]) == [
        "Suspect: OS version 17.2: 80.0% of the failures, 10.0% of the calls (lift 8.0\u00d7)"
    ]
    assert page.text.count('data-suspect="true"') == 1
    for svg in re.findall(r"<svg .*?</svg>", page.text, flags=re.S):
        ET.fromstring(svg)


def test_hostile_report_values_are_escaped(tmp_path) -> None:
    with serve(dashboard_app(tmp_path, fixture_reports(hostile=True))) as url:
        page = httpx.get(f"{url}/dashboard", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "\x00" not in page.text and "\x1b" not in page.text and "\u202e" not in page.text


def test_a_missing_report_is_a_note_not_an_error(tmp_path) -> None:
    loader = fixture_reports(missing=("compensation", "outcomes"))
    with serve(dashboard_app(tmp_path, loader)) as url:
        page = httpx.get(f"{url}/dashboard", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert page.status_code == 200
    assert page.text.count(catalogues().text("en", "dashboard.unavailable")) == 2
    assert page.text.count("<svg") == 1 + 7


def test_the_window_comes_from_the_list(base) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    page = httpx.get(f"{base}/dashboard?since=30d", headers=headers)
    assert '<option value="30d" selected>' in page.text
    bad = httpx.get(f"{base}/dashboard?since=1000d", headers=headers)
    assert bad.status_code == 400
    assert catalogues().text("en", "dashboard.bad_window") in bad.text


def test_without_an_admin_key_nobody_can_sign_in(tmp_path) -> None:
    config = Settings(database=f"sqlite:///{tmp_path / 'server.db'}", access_log=False)
    with serve(create_app(config, signing_key=generate_signing_key())) as url:
        assert httpx.get(f"{url}/dashboard/sign-in").status_code == 503
        assert (
            httpx.post(f"{url}/dashboard/sign-in", data={"admin_key": "x" * 20}).status_code == 503
        )
        assert httpx.get(f"{url}/dashboard").status_code == 303


def test_the_real_reports_of_an_empty_server(tmp_path, store_url) -> None:
    """The default loader: server_stub.analytics in process, every section drawn."""
    from tests.support.server_support import admin, running

    with running(tmp_path, database=store_url, detector_interval=0.0, dispatch=False) as url:
        page = httpx.get(f"{url}/dashboard?since=24h", headers=admin())
    assert page.status_code == 200
    assert page.text.count("<svg") == 1 + 7 + 2
    assert catalogues().text("en", "dashboard.unavailable") not in page.text
    assert catalogues().text("en", "dashboard.failed") not in page.text
    assert catalogues().text("en", "dashboard.no_suspect") in page.text
    with pytest.raises(ReportUnavailable):
        contract_reports("nothing", None, {}, None)  # type: ignore[arg-type]


class TestSessions:
    def sessions(self, keys: list[NamedKey], clock: Any = time.time) -> DashboardSessions:
        return DashboardSessions(self.key, keys, ttl=60, clock=clock)

    key = generate_signing_key()

    def test_round_trip_names_the_admin(self) -> None:
        sessions = self.sessions(
            [NamedKey("ops", "ops-key-0123456789"), NamedKey("admin", ADMIN_KEY)]
        )
        assert sessions.admin_of_key(ADMIN_KEY) == "admin"
        assert sessions.admin_of_key("ops-key-0123456789") == "ops"
        assert sessions.admin_of_key("nope-0123456789abc") is None
        assert sessions.admin(sessions.issue("ops")) == "ops"

    def test_expired_tampered_and_rotated_cookies_are_refused(self) -> None:
        now = [1000.0]
        keys = [NamedKey("admin", ADMIN_KEY)]
        sessions = self.sessions(keys, clock=lambda: now[0])
        cookie = sessions.issue("admin")
        now[0] += 61
        with pytest.raises(DashboardSessionInvalid, match="expired"):
            sessions.admin(cookie)
        now[0] -= 61
        signed, _, mac = cookie.rpartition(".")
        with pytest.raises(DashboardSessionInvalid):
            sessions.admin(signed + "." + mac[::-1])
        rotated = self.sessions(
            [NamedKey("admin", "a-new-admin-key-0123456789")], clock=lambda: now[0]
        )
        with pytest.raises(DashboardSessionInvalid, match="bad signature"):
            rotated.admin(cookie)
        other_server = DashboardSessions(generate_signing_key(), keys, clock=lambda: now[0])
        with pytest.raises(DashboardSessionInvalid):
            other_server.admin(cookie)

    def test_a_user_session_token_is_no_dashboard_cookie(self) -> None:
        from server_stub.domain._sessions import SessionSigner

        user_token = SessionSigner(self.key).issue("admin")
        with pytest.raises(DashboardSessionInvalid):
            self.sessions([NamedKey("admin", ADMIN_KEY)]).admin(user_token)
        with pytest.raises(DashboardSessionInvalid):
            self.sessions([NamedKey("admin", ADMIN_KEY)]).admin("dash1." + "A" * 2000)
