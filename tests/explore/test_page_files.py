"""The explore page's files as the app serves them: without a key, from the package, nothing
from elsewhere at run time."""

from __future__ import annotations

import re

import httpx

from crm_graph.api.app import EXPLORE_PAGE, create_app
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore


async def test_the_page_is_served_without_a_key_and_loads_nothing_from_elsewhere(
    store: GraphStore,
) -> None:
    app = create_app(StoreSettings(), store=store, rate_limiter=None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # /explore leads to the page
        moved = await client.get("/explore")
        assert moved.status_code in (307, 308) and moved.headers["location"].endswith("/explore/")
        page = await client.get("/explore/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        # every file the page names is served from the same place
        named = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert set(named) == {"#search", "data:,", "explore.css", "explore.js"}
        for name in ("explore.js", "explore.css"):
            served = await client.get(f"/explore/{name}")
            assert served.status_code == 200
            assert served.content == (EXPLORE_PAGE / name).read_bytes()
        script = (await client.get("/explore/explore.js")).text
        assert not re.search(r"""(?:import|fetch)\s*\(?\s*["']https?://""", script)
        assert (await client.get("/explore/nothing.js")).status_code == 404
        # and /graphql still wants a key
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 401
