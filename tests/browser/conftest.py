"""A real headless Chromium for the browser tests: Debian's `chromium` (/usr/bin/chromium, or
CRM_GRAPH_CHROMIUM) driven by the Python `playwright` package through `executable_path`;
Playwright's own browser download is never used. Skipped, with the reason, where either is
absent.

The browser reaches nothing but 127.0.0.1: every other request goes to a proxy at a closed
port of 127.0.0.1 and fails (Chromium never proxies loopback), and each such request is
recorded (`BrowserPage.elsewhere`): the pages under test must need nothing from anywhere else.
Not Playwright's request interception (`route`): with it on, Playwright answers CORS preflights
itself, and a request the API would have refused reaches the server. Screenshots go under the
test's tmp_path, never into the repository."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.chromium import launch_options, unavailable

LOCAL_HOSTS = {"127.0.0.1"}
NOWHERE = "http://127.0.0.1:9"
"""The proxy everything but loopback is sent to: the discard port, closed here."""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """The launched browser, one per test module. Not one per session: Playwright's sync API
    keeps its own asyncio loop marked running in this thread until it stops, and every async
    test after it would then fail to start (pytest-asyncio cannot run its loop inside another);
    the modules here hold sync tests only."""
    if reason := unavailable():
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options(f"--proxy-server={NOWHERE}"))
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class BrowserPage:
    page: Any
    """playwright.sync_api.Page"""
    screenshots: Path
    elsewhere: list[str] = field(default_factory=list)
    """Requests the page tried to make to any host but 127.0.0.1 (all failed)."""
    console_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(chromium: Any, tmp_path: Path) -> Iterator[BrowserPage]:
    """A page in a fresh browser context (its own storage)."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    # 120 s, as the workbench's tests (tests/explore): a wait ends as soon as its condition
    # holds, and at a load average of 30 on 2 cores, GraphiQL's bundle, a fetch and a render
    # can take longer than Playwright's usual 30 s
    context.set_default_timeout(120_000)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    opened = BrowserPage(context.new_page(), shots)

    def note(request: Any) -> None:
        url = urlsplit(request.url)
        if url.scheme not in ("data", "blob") and url.hostname not in LOCAL_HOSTS:
            opened.elsewhere.append(request.url)

    context.on("request", note)
    opened.page.on(
        "console", lambda m: opened.console_errors.append(m.text) if m.type == "error" else None
    )
    try:
        yield opened
    finally:
        context.close()
