"""Browser fixtures (a pytest plugin loaded by conftest): Debian's Chromium and the live server.

The Chromium fixtures skip with a reason when Chromium is absent, unless
``ERRDISCOUNT_REQUIRE_BROWSER=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

# Debian's Chromium, driven by Playwright's Python package (never `playwright install`).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSP_MARKERS = ("Content Security Policy", "Refused to")


def _chromium() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium per test module; skips (or fails in CI) without one.

    Module scope, not session: Playwright's sync API keeps its event loop marked as running
    in this thread while it is open, so any later ``asyncio.run`` (or async test) in the
    same thread would fail. pytest-randomly keeps a module's tests together, so the loop is
    gone before another module runs; browser test modules hold no async tests.
    """
    executable = _chromium()
    required = os.environ.get("ERRDISCOUNT_REQUIRE_BROWSER") == "1"
    if executable is None:
        reason = "Chromium not found (Debian: apt-get install -y chromium)"
        if required:
            pytest.fail(f"ERRDISCOUNT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - playwright is a dev dependency
        if required:
            pytest.fail("ERRDISCOUNT_REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


class ConsoleLog:
    """Console messages and page errors of one page, to check for CSP violations."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if any(marker in m for marker in CSP_MARKERS)]


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(browser: Any, console: ConsoleLog) -> Iterator[Any]:
    """A fresh browser context and page; fails the test on any CSP violation."""
    context = browser.new_context(viewport={"width": 1000, "height": 720})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    opened.on("console", lambda message: console.messages.append(message.text))
    opened.on("pageerror", lambda error: console.messages.append(f"pageerror: {error}"))
    try:
        yield opened
    finally:
        context.close()
    assert console.csp_violations() == []
    assert [m for m in console.messages if m.startswith("pageerror")] == []


ADMIN_KEY = "admin-key-for-tests-0123456789"


class LiveServer:
    """The real redemption server (create_app) on loopback, SQLite in tmp_path."""

    def __init__(self, base_url: str, app: Any) -> None:
        self.base_url = base_url
        self.app = app
        self.admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def issue(self, **overrides: Any) -> dict[str, Any]:
        import httpx

        body = {
            "subject": "user-1",
            "error_code": "PAY_001",
            "category": "business",
            "severity": "minor",
            "compensation": {"kind": "coupon", "amount": 5, "unit": "USD"},
            **overrides,
        }
        response = httpx.post(f"{self.base_url}/v1/tokens", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def load_codes(self, *codes: str, pool: str = "coupon") -> None:
        import httpx

        response = httpx.post(
            f"{self.base_url}/v1/coupon-pools/{pool}/codes",
            json={"codes": list(codes)},
            headers=self.admin,
        )
        assert response.status_code in (200, 201), response.text

    def redemptions(self) -> int:
        """How many redemptions the server recorded (from the store itself)."""
        import httpx

        response = httpx.get(
            f"{self.base_url}/v1/ledger", params={"format": "json"}, headers=self.admin
        )
        assert response.status_code == 200, response.text
        entries = response.json()["entries"]
        return sum(1 for entry in entries if entry["event"] == "redeemed")


@pytest.fixture
def live_server(tmp_path: Any) -> Iterator[LiveServer]:
    from errdiscount_sdk import generate_signing_key
    from server_stub import Settings, create_app
    from tests.support.server import serve

    settings = Settings(
        database=f"sqlite:///{tmp_path / 'server.db'}",
        admin_key=ADMIN_KEY,
        demo=True,
        access_log=False,
    )
    app = create_app(settings, signing_key=generate_signing_key())
    with serve(app) as base_url:
        yield LiveServer(base_url, app)
