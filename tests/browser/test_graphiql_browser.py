"""GraphiQL as served by a real `crm-graph serve`, in headless Chromium with the network to
anything but 127.0.0.1 blocked: it loads, takes a key, fetches the schema by itself (Docs
works), runs the pre-filled 360 query, and keeps the key for the tab only."""

from __future__ import annotations

from pathlib import Path

from tests.browser.conftest import BrowserPage
from tests.helpers import secret_of
from tests.serving import serving


def test_graphiql_works_offline_with_a_key_for_the_tab_only(
    browser_page: BrowserPage, tmp_path: Path
) -> None:
    with serving(tmp_path, customers=20) as api:
        key = api.create_key("admin")
        page = browser_page.page
        # given the page, loaded with nothing reachable but the server
        page.goto(f"{api.url}/graphql")
        page.locator(".graphiql-container").wait_for()
        page.locator("#crm-api-key-state", has_text="no key").wait_for()
        # the README's 360 example is pre-filled
        editor = page.locator(".graphiql-query-editor")
        editor.get_by_text("Customer360").first.wait_for()
        # when the key is entered
        page.fill("#crm-api-key", key)
        page.click("#crm-api-key-use")
        page.locator("#crm-api-key-state", has_text="key set").wait_for()
        # then the schema is fetched by itself: Docs shows the root type and its fields
        page.get_by_role("button", name="Show Documentation Explorer").click()
        docs = page.locator(".graphiql-doc-explorer")
        docs.get_by_text("Query", exact=True).first.click()
        docs.get_by_text("searchCustomers").first.wait_for()
        browser_page.screenshot("docs")
        # when the query runs, its data is shown
        page.locator(".graphiql-execute-button").click()
        response = page.locator(".graphiql-response")
        response.get_by_text('"C00000001"').first.wait_for()
        text = response.inner_text()
        browser_page.screenshot("answer")
        assert '"customer"' in text and '"totalSpend"' in text and '"errors"' not in text
        # and the key is in this tab's sessionStorage, never in localStorage
        local = page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
        session = page.evaluate("JSON.stringify(Object.assign({}, window.sessionStorage))")
        assert key not in local and secret_of(key) not in local
        assert key in session
    # and nothing was asked of any other host
    assert browser_page.elsewhere == []
