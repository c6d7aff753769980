"""Browser fixtures for the explore page: Debian's Chromium driven by Playwright (its own browser
download cannot work here), and the real app served over HTTP by uvicorn on the test's store.

Skipped, with the reason, where the `playwright` package or the Chromium binary is absent
(`CRM_GRAPH_CHROMIUM` names another binary)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bench.chromium import launch_options, unavailable
from crm_graph.api.app import create_app
from crm_graph.api.settings import Settings
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.conftest import TEST_STATEMENT_TIMEOUT

VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the session."""
    if reason := unavailable():
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(**launch_options())
        yield launched
        await launched.close()


class Page:
    """A browser tab on the served app; collects the page's uncaught errors and failed requests,
    which a test asserts there are none of."""

    def __init__(self, page: Any, base: str, shots: Path) -> None:
        self.page = page
        self.base = base
        self.shots = shots
        self.problems: list[str] = []
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("console", lambda m: self.problems.append(f"console error: {m.text}")
                if m.type == "error" else None)  # fmt: skip

    async def open(self, fragment: str = "") -> None:
        """Go to /explore/#fragment and wait until the page says it has drawn."""
        await self.page.goto(f"{self.base}/explore/{'#' + fragment if fragment else ''}")
        await self.ready()

    async def ready(self) -> None:
        await self.page.wait_for_selector("body[data-ready=true]", timeout=120_000)

    async def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
async def served(store: GraphStore) -> AsyncIterator[str]:
    """The real app on the test's store, served over HTTP on a free port; its base URL."""
    # the generous statement timeout of the API tests (tests/conftest.py's `api_for`)
    app_settings = dataclasses.replace(
        Settings.from_env(store=StoreSettings()), statement_timeout=TEST_STATEMENT_TIMEOUT
    )
    app = create_app(app_settings, store=store, rate_limiter=None)
    # the socket is bound here and handed to uvicorn: a port found free and bound later could
    # be taken in between on a machine shared with other suites
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[listening]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        await task
    finally:
        listening.close()


@pytest.fixture
async def tab(browser: Any, served: str, tmp_path: Path) -> AsyncIterator[Page]:
    """A fresh browser context (empty session storage) with one tab; screenshots go to
    tmp_path/screenshots."""
    context = await browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(120_000)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    page = Page(await context.new_page(), served, shots)
    yield page
    await context.close()


from tests.api.conftest import shop  # noqa: E402, F401  (the small business, for role tests)
