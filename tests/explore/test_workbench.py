"""The analyst's workbench in a real browser, on a generated business after `train`: what is on
screen is checked against the API's answers to the same questions. Screenshots of each page go
to the test's tmp_path/screenshots (docs/explore holds one of each)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_graph.analytics.train import train
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate
from tests.explore.conftest import Page
from tests.helpers import broad_partner_scopes

pytestmark = pytest.mark.slow


async def ask(base: str, key: str, query: str, **variables: Any) -> dict[str, Any]:
    """The API's answer, asked over the same HTTP server the page talks to."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables},
                                     headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def money(value: float) -> str:
    return f"{value:,.2f}"


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def words(text: str) -> list[str]:
    return text.split()


async def sign_in(tab: Page, key: str) -> None:
    await tab.open()
    assert "null" not in words(await tab.page.inner_text("body"))  # no absent value written out
    await tab.page.fill("#key", key)
    await tab.page.click("form.keyform button[type=submit]")
    await tab.page.wait_for_selector("#search")


async def texts(tab: Page, selector: str) -> list[str]:
    return [t.strip() for t in await tab.page.locator(selector).all_inner_texts()]


async def test_an_analyst_walks_through_the_workbench(
    store: GraphStore, served: str, tab: Page, tmp_path: Path
) -> None:
    # given a generated business, trained, and an analyst's key
    generate(tmp_path / "biz", 300, seed=17)
    await load_folder(store, tmp_path / "biz", progress=False)
    await train(store, horizon_days=90, processes=1)
    _, key = await create_key(store, Role.ANALYST, "analyst")
    top = (await ask(served, key, "{ influencers(first: 1) { id name } }"))["influencers"][0]

    # when the analyst opens the page and enters the key
    await sign_in(tab, key)

    # -- search: the rows are the API's answer to the same text -----------------------------
    text = top["name"].split()[0].strip(",")
    await tab.page.fill("#search", text)
    await tab.page.press("#search", "Enter")
    await tab.page.wait_for_selector("#results p.count")
    await tab.ready()
    found = await ask(
        served, key, "query($t: String!) { searchCustomers(text: $t) { nodes { id } } }", t=text
    )
    shown = await tab.page.locator("#results tr[data-customer]").evaluate_all(
        "rows => rows.map(r => r.dataset.customer)"
    )
    assert "null" not in words(await tab.page.inner_text("#results"))
    assert shown == [c["id"] for c in found["searchCustomers"]["nodes"]] and top["id"] in shown
    await tab.shot("search")

    # -- the 360 ------------------------------------------------------------------------------
    await tab.page.click(f"#results tr[data-customer='{top['id']}'] a")
    await tab.page.wait_for_selector("[data-customer-name]")
    await tab.ready()
    view = (await ask(served, key, """
      query($id: ID!) { customer(id: $id) {
        name totalSpend orderCount transactions(first: 20) { nodes { id } } interactions(first:
          50) { nodes { id } }
        socialTies { nodes { customer { id } } } segment { name } churnRisk { score drivers {
          feature } }
        recommendations(first: 5) { product { id } } } }""", id=top["id"]))["customer"]  # fmt: skip
    assert await tab.page.inner_text("h1") == view["name"]
    fact = tab.page.locator
    assert await fact("[data-fact='Total spend']").inner_text() == money(view["totalSpend"])
    assert await fact("[data-fact='Orders']").inner_text() == str(view["orderCount"])
    assert await fact("[data-fact='Segment']").inner_text() == view["segment"]["name"]
    assert await fact("[data-fact='Churn risk']").inner_text() == percent(
        view["churnRisk"]["score"]
    )
    orders = await tab.page.locator("[data-order]").evaluate_all("e => e.map(o => o.dataset.order)")
    assert orders == [t["id"] for t in view["transactions"]["nodes"]]
    assert await tab.page.locator("[data-interaction]").count() == len(
        view["interactions"]["nodes"]
    )
    ties = await tab.page.locator("[data-tie]").evaluate_all("e => e.map(t => t.dataset.tie)")
    assert ties == [t["customer"]["id"] for t in view["socialTies"]["nodes"]]
    recommended = await tab.page.locator("[data-recommendation]").evaluate_all(
        "e => e.map(r => r.dataset.recommendation)"
    )
    assert recommended == [r["product"]["id"] for r in view["recommendations"]]
    await tab.shot("customer")

    # -- the network: depth 2 around the customer, as the API gives it -----------------------
    await tab.page.click("a:text('Network picture')")
    await tab.page.wait_for_selector("#network-counts")
    await tab.ready()
    hood_query = """query($id: ID!, $d: Int!) { neighbourhood(id: $id, depth: $d, limit: 500) {
        members { distance customer { id } } ties { sourceId targetId type } } }"""
    hood = (await ask(served, key, hood_query, id=top["id"], d=2))["neighbourhood"]
    nodes = {top["id"]} | {m["customer"]["id"] for m in hood["members"]}
    edges = {(t["sourceId"], t["type"], t["targetId"]) for t in hood["ties"]}
    counts = tab.page.locator("#network-counts")
    assert await counts.get_attribute("data-nodes") == str(len(nodes))
    assert await counts.get_attribute("data-edges") == str(len(edges))
    drawn = await tab.page.evaluate("window.exploreNetwork.graph.nodes()")
    assert set(drawn) == nodes
    await tab.shot("network")

    # a click on a customer far from the centre (and from any other) selects it ...
    far = [m["customer"]["id"] for m in hood["members"] if m["distance"] == 2]
    place = await tab.page.evaluate(
        """(ids) => {
          const { graph, renderer } = window.exploreNetwork;
          const at = (n) => renderer.graphToViewport(graph.getNodeAttributes(n));
          const box = document.getElementById("sigma").getBoundingClientRect();
          for (const id of ids) {
            const p = at(id);
            const alone = graph.nodes().every((o) => o === id ||
              Math.hypot(at(o).x - p.x, at(o).y - p.y) > 14);
            if (alone && p.x > 5 && p.y > 5 && p.x < box.width - 5 && p.y < box.height - 5)
              return { id, x: box.left + p.x, y: box.top + p.y };
          }
          return null;
        }""",
        far or [m["customer"]["id"] for m in hood["members"]],
    )
    assert place is not None, "no customer drawn clear of the others to click"
    await tab.page.mouse.click(place["x"], place["y"])
    await tab.page.wait_for_selector(f"[data-selected='{place['id']}']")
    # ... and expanding it adds its own neighbours, as the API gives them
    await tab.page.click("#expand")
    more = (await ask(served, key, hood_query, id=place["id"], d=1))["neighbourhood"]
    grown = nodes | {m["customer"]["id"] for m in more["members"]}
    await tab.page.wait_for_selector(f"#network-counts[data-nodes='{len(grown)}']")

    # a path to that customer is the API's shortest path, highlighted
    path = (await ask(served, key, "query($a: ID!, $b: ID!) { path(from: $a, to: $b, "
                      "maxLength: 6) { length customers { id name } } }",
                      a=top["id"], b=place["id"]))["path"]  # fmt: skip
    await tab.page.fill("#path-to", place["id"])
    await tab.page.click("#path-button")
    result = tab.page.locator("#path-result")
    await result.wait_for()
    assert await result.get_attribute("data-length") == str(path["length"])
    assert " → ".join(c["name"] or c["id"] for c in path["customers"]) in await result.inner_text()
    await tab.shot("network-path")

    # -- the segments map -----------------------------------------------------------------------
    await tab.open("segments")
    map_ = (await ask(served, key, "{ segmentMap(sample: 2000) { total points { segmentId } } "
                      "segments { id size model } }"))  # fmt: skip
    caption = tab.page.locator("#segment-map-caption")
    assert await caption.get_attribute("data-points") == str(len(map_["segmentMap"]["points"]))
    assert await caption.get_attribute("data-total") == str(map_["segmentMap"]["total"])
    assert map_["segmentMap"]["total"] > 0
    sizes = {s["id"]: s["size"] for s in map_["segments"] if s["model"] == "segments"}
    rows = await tab.page.locator("#segment-profiles tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.segment, r.cells[1].innerText])"
    )
    assert {segment: int(size) for segment, size in rows} == sizes
    await tab.shot("segments")

    # -- dashboards: every panel drawn; the CSV of revenue by month is the API's numbers ---------
    await tab.open("dashboards")
    states = await tab.page.locator("[data-panel]").evaluate_all(
        "e => Object.fromEntries(e.map(p => [p.dataset.panel, p.dataset.state]))"
    )
    assert set(states.values()) == {"ready"} and len(states) == 7
    risky = (await ask(served, key, "{ mostAtRisk(first: 15) { id } }"))["mostAtRisk"]
    shown = await texts(tab, "[data-panel='most-at-risk'] tbody tr td:first-child")
    assert shown == [c["id"] for c in risky]
    async with tab.page.expect_download() as download:
        await tab.page.click("[data-csv='revenue-by-month']")
    saved = await (await download.value).path()
    table = list(csv.DictReader(io.StringIO(Path(saved).read_text())))
    months = await ask(served, key, "{ revenue(by: MONTH) { key revenue orders customers } }")
    assert [
        {"month": r["month"], "revenue": float(r["revenue"]), "orders": int(r["orders"]),
         "customers": int(r["customers"])} for r in table
    ] == [
        {"month": m["key"], "revenue": m["revenue"], "orders": m["orders"],
         "customers": m["customers"]} for m in months["revenue"]
    ]  # fmt: skip
    await tab.shot("dashboards")

    # -- a saved view, opened from its link, lists what the API's customers(where:) does --------
    await tab.open("views")
    await tab.page.fill("#f-minSpend", "500")
    await tab.page.fill("#f-minOrders", "3")
    await tab.page.fill("#view-name", "big spenders")
    await tab.page.click("#save-view")
    link = tab.page.locator("#view-link")
    await link.wait_for()
    await tab.shot("views")
    await tab.page.goto(await link.get_attribute("href"))
    await tab.ready()
    where = {"AND": [{"totalSpend": {"gte": 500}}, {"orderCount": {"gte": 3}}]}
    answer = (await ask(served, key, """query($w: CustomerFilter) { customers(where: $w,
        first: 50) { totalCount nodes { id } } }""", w=where))["customers"]  # fmt: skip
    assert await tab.page.get_attribute("#view-count", "data-total") == str(answer["totalCount"])
    listed = tab.page.locator("main tr[data-customer]")
    ids = await listed.evaluate_all("rows => rows.map(r => r.dataset.customer)")
    assert ids == [c["id"] for c in answer["nodes"]] and answer["totalCount"] > 0
    assert "null" not in words(await tab.page.inner_text("main"))
    await tab.shot("view")
    assert tab.problems == []


@pytest.mark.usefixtures("shop")
async def test_a_partner_key_sees_what_its_role_allows_and_is_told_what_it_does_not(
    store: GraphStore, served: str, tab: Page
) -> None:
    # given a partner's key on a small business, allowed to find customers (not the preset's)
    _, key = await create_key(store, Role.PARTNER, "partner", scopes=broad_partner_scopes())
    await sign_in(tab, key)
    # when it searches: names only, contact details masked as the API masks them
    await tab.page.fill("#search", "Ann")
    await tab.page.press("#search", "Enter")
    await tab.page.wait_for_selector("#results p.count")
    await tab.ready()
    found = await ask(served, key, '{ searchCustomers(text: "Ann") { nodes { id email } } }')
    rows = await tab.page.locator("#results tr[data-customer]").evaluate_all(
        "rows => rows.map(r => [r.dataset.customer, r.cells[2].innerText])"
    )
    assert rows == [[c["id"], c["email"] or "–"] for c in found["searchCustomers"]["nodes"]]
    assert rows and all("•••@x.org" in email for _, email in rows)  # as masking.mask_email
    # then the dashboards say, panel by panel, that aggregates are not for this key
    await tab.open("dashboards")
    states = await tab.page.locator("[data-panel]").evaluate_all("e => e.map(p => p.dataset.state)")
    assert states == ["denied"] * 7
    notice = await tab.page.locator("[data-panel='revenue-by-month'] .denied").inner_text()
    assert "not available for this key" in notice and "aggregates scope" in notice
    await tab.shot("dashboards-partner")
    # and so do the segments map and the saved views
    await tab.open("segments")
    assert "not available for this key" in await tab.page.locator(".denied").inner_text()
    await tab.open("views")
    assert "not available for this key" in await tab.page.locator("#view-list .denied").inner_text()
    await tab.open("view=anything")
    denied = await tab.page.locator("main .denied").inner_text()
    assert denied.startswith("Saved views: not available for this key.") and "saved views" in denied
    assert tab.problems == []
