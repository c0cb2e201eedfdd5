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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium for the whole session; skips (or fails in CI) without one."""
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
