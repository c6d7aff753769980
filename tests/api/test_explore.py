"""Exploring relationships and aggregates through the API, on the small `shop` business:

c00 -KNOWS-> c01        c03 -FAMILY-> c04        c06 -KNOWS-> c03
"""

from __future__ import annotations

from crm_graph.graph.store import GraphStore
from tests.conftest import Api

NEIGHBOURHOOD = """
query($id: ID!, $depth: Int!, $types: [TieType!]) {
  neighbourhood(id: $id, depth: $depth, types: $types) {
    center { id }
    members { distance customer { id } }
    ties { sourceId targetId type }
    truncated
  }
}
"""

PATH = """
query($from: ID!, $to: ID!, $max: Int!) {
  path(from: $from, to: $to, maxLength: $max) {
    length customers { id } ties { sourceId targetId type }
  }
}
"""


async def test_neighbourhood_by_depth_and_type(shop: None, admin: Api) -> None:
    one = (await admin.data(NEIGHBOURHOOD, id="c04", depth=1))["neighbourhood"]
    assert one["center"] == {"id": "c04"}
    assert one["members"] == [{"distance": 1, "customer": {"id": "c03"}}]
    two = (await admin.data(NEIGHBOURHOOD, id="c04", depth=2))["neighbourhood"]
    assert [(m["customer"]["id"], m["distance"]) for m in two["members"]] == [
        ("c03", 1),
        ("c06", 2),
    ]
    assert sorted((t["sourceId"], t["targetId"], t["type"]) for t in two["ties"]) == [
        ("c03", "c04", "FAMILY"),
        ("c06", "c03", "KNOWS"),
    ]
    knows_only = await admin.data(NEIGHBOURHOOD, id="c04", depth=2, types=["KNOWS"])
    assert knows_only["neighbourhood"]["members"] == []
    assert (await admin.data(NEIGHBOURHOOD, id="nobody", depth=1)) == {"neighbourhood": None}
    errors = await admin.errors(NEIGHBOURHOOD, id="c04", depth=4)
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "neighbourhood.depth"}


async def test_path_between_customers(shop: None, admin: Api) -> None:
    found = (await admin.data(PATH, **{"from": "c06", "to": "c04", "max": 4}))["path"]
    assert found["length"] == 2
    assert [c["id"] for c in found["customers"]] == ["c06", "c03", "c04"]
    assert [(t["sourceId"], t["targetId"], t["type"]) for t in found["ties"]] == [
        ("c06", "c03", "KNOWS"),
        ("c03", "c04", "FAMILY"),
    ]
    backwards = (await admin.data(PATH, **{"from": "c04", "to": "c06", "max": 4}))["path"]
    assert [c["id"] for c in backwards["customers"]] == ["c04", "c03", "c06"]
    assert (await admin.data(PATH, **{"from": "c06", "to": "c04", "max": 1})) == {"path": None}
    assert (await admin.data(PATH, **{"from": "c00", "to": "c04", "max": 6})) == {"path": None}


async def test_products_buyers_and_categories(shop: None, admin: Api) -> None:
    data = await admin.data("""{
      products(first: 1) { nodes { id name } pageInfo { hasNextPage endCursor } }
      product(id: "p2") { name category buyers { nodes { customer { id } quantity orders spend } } }
      categories { name productCount }
    }""")
    assert data["products"]["nodes"] == [{"id": "p1", "name": "Mug"}]
    assert data["products"]["pageInfo"]["hasNextPage"] is True
    after = data["products"]["pageInfo"]["endCursor"]
    following = await admin.data(
        "query($a: String) { products(first: 1, after: $a) { nodes { id } } }", a=after
    )
    assert following["products"]["nodes"] == [{"id": "p2"}]
    # and backwards: the last product, then the one before it
    back = (
        "query($b: String) { products(last: 1, before: $b) { nodes { id } pageInfo { "
        "hasNextPage hasPreviousPage startCursor } } }"
    )
    last = (await admin.data(back, b=None))["products"]
    assert last["nodes"] == [{"id": "p2"}] and last["pageInfo"]["hasPreviousPage"]
    before = (await admin.data(back, b=last["pageInfo"]["startCursor"]))["products"]
    assert before["nodes"] == [{"id": "p1"}]
    assert before["pageInfo"] == {**before["pageInfo"], "hasNextPage": True,
                                  "hasPreviousPage": False}  # fmt: skip
    assert sorted(b["customer"]["id"] for b in data["product"]["buyers"]["nodes"]) == [
        "c01",
        "c04",
        "c08",
    ]
    assert all(b["spend"] == 30 and b["orders"] == 1 for b in data["product"]["buyers"]["nodes"])
    assert data["categories"] == [
        {"name": "Home", "productCount": 1},
        {"name": "Kitchen", "productCount": 1},
    ]


async def test_revenue_by_dimension(shop: None, admin: Api) -> None:
    query = "query($by: RevenueDimension!) { revenue(by: $by) { key revenue orders customers } }"
    by_month = (await admin.data(query, by="MONTH"))["revenue"]
    assert by_month == [{"key": "2024-01", "revenue": 140.0, "orders": 9, "customers": 9}]
    by_country = {r["key"]: r for r in (await admin.data(query, by="COUNTRY"))["revenue"]}
    assert by_country["GB"]["revenue"] == 90.0 and by_country["GB"]["customers"] == 5
    by_category = {
        r["key"]: r["revenue"] for r in (await admin.data(query, by="CATEGORY"))["revenue"]
    }
    assert by_category == {"Home": 90.0, "Kitchen": 50.0}


async def test_revenue_by_month_across_years(store: GraphStore, admin: Api) -> None:
    await store.write(
        "CREATE (c:Customer {id: 'm'}) WITH c UNWIND $ts AS at "
        "CREATE (c)-[:PLACED]->(:Transaction {id: toString(at), at: at, total: 1.0})",
        {"ts": [951782400000, 951868800000, 1709251199000, 1709251200000, -86400000]},
    )  # 2000-02-29, 2000-03-01, 2024-02-29T23:59:59, 2024-03-01, 1969-12-31
    rows = (await admin.data("{ revenue(by: MONTH) { key orders } }"))["revenue"]
    assert [(r["key"], r["orders"]) for r in rows] == [
        ("1969-12", 1),
        ("2000-02", 1),
        ("2000-03", 1),
        ("2024-02", 1),
        ("2024-03", 1),
    ]
