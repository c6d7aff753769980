"""A page in headless Chromium subscribes to changes with the `graphql-ws` library's client, as
the README shows, against a real `crm-graph serve`: its key in `connection_init`, a change made by
another client arrives; a bad key is refused with 4403 and the reason; a page on an origin not
listed in CRM_GRAPH_CORS_ORIGINS cannot open the socket."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.browser.conftest import BrowserPage
from tests.browser.test_cors_browser import static_site
from tests.serving import serving

CLIENT = Path(__file__).parent / "vendor" / "graphql-ws-6.4.2.min.js"
SUBSCRIBE = """([api, key]) => {
  window.received = []; window.ended = null;
  const client = graphqlWs.createClient({
    url: api.replace("http://", "ws://") + "/graphql",
    connectionParams: {authorization: "Bearer " + key},
    retryAttempts: 0,
  });
  client.subscribe(
    {query: "subscription { events(fromSequence: 0) { sequence type customerIds } }"},
    {next: (message) => window.received.push(message),
     error: (e) => { window.ended = {code: e.code ?? null, reason: e.reason ?? String(e)}; },
     complete: () => {}},
  );
}"""


def load_client(page: Any, site: str) -> None:
    page.goto(f"{site}/index.html")
    page.add_script_tag(path=str(CLIENT))


def test_a_page_subscribes_with_graphql_ws_and_receives_a_change(
    browser_page: BrowserPage, tmp_path: Path
) -> None:
    with (
        static_site(tmp_path / "allowed") as allowed,
        static_site(tmp_path / "other") as other,
        serving(tmp_path / "api", {"CRM_GRAPH_CORS_ORIGINS": allowed}) as api,
    ):
        admin = api.create_key("admin")
        reader = api.create_key("analyst")
        page = browser_page.page
        # given a page on the allowed origin subscribed with the analyst's key
        load_client(page, allowed)
        page.evaluate(SUBSCRIBE, [api.url, reader])
        # when another client creates a customer
        answer = httpx.post(
            f"{api.url}/graphql",
            json={"query": 'mutation { upsertCustomers(input: [{id: "web1", name: "Wes"}]) '
                           "{ __typename } }"},
            headers={"Authorization": f"Bearer {admin}"}, timeout=60,
        )  # fmt: skip
        assert answer.json()["data"]["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess"
        # then the page receives its event (replayed or live: fromSequence 0)
        page.wait_for_function(
            "() => window.received.some(m => m.data && m.data.events.customerIds.includes('web1'))",
            timeout=60_000,
        )
        received = page.evaluate("() => window.received")
        event = next(m for m in received if "web1" in m["data"]["events"]["customerIds"])
        assert event["data"]["events"]["type"] == "CUSTOMER_CREATED"
        assert page.evaluate("() => window.ended") is None
        browser_page.screenshot("subscribed")

        # a bad key: closed with 4403 and why (graphql-ws does not retry a 4403)
        load_client(page, allowed)
        page.evaluate(SUBSCRIBE, [api.url, "crm_AAAAAAAAAAAA_" + "A" * 43])
        page.wait_for_function("() => window.ended !== null", timeout=60_000)
        closed = page.evaluate("() => window.ended")
        assert closed == {"code": 4403, "reason": "invalid API key"}

        # a page on another origin: the handshake is refused, nothing received
        load_client(page, other)
        page.evaluate(SUBSCRIBE, [api.url, reader])
        page.wait_for_function("() => window.ended !== null", timeout=60_000)
        time.sleep(0.5)
        assert page.evaluate("() => window.received") == []
        assert page.evaluate("() => window.ended")["code"] != 4403  # refused before any init
    assert browser_page.elsewhere == []
