"""The one page shape on every list that can grow (issue 16): a customer's transactions,
interactions, products bought and social ties, an order's lines, a product's buyers are Relay
connections, paged both ways with stable cursors, bounded, charged by the cost model, and kept
to the key's customer scope, on both engines; through the 360 view (the part comes with the
profile) and through the loaders (the same part under an alias with other arguments)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_graph.api.auth.keys import Role
from crm_graph.api.pagination import MAX_PAGE
from crm_graph.graph.access import CustomerScope
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.conftest import Api
from tests.helpers import broad_partner_scopes, write_csv

IN_SCOPE = ("c00", "c01", "c02", "c03")
"""The customers a scoped partner key may see (c04..c07 are outside)."""

DAYS = ["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01", "2024-02-01", "2024-03-01"]
"""Days of c00's orders t00..t05 and contacts i00..i05: equal days, so the id breaks ties."""

TIES = [  # source, target, type
    ("c00", "c01", "KNOWS"),
    ("c01", "c00", "KNOWS"),  # the same pair, the other way: its own place in the ordering
    ("c00", "c02", "FAMILY"),
    ("c03", "c00", "COLLEAGUE"),
    ("c00", "c04", "KNOWS"),  # out of the partner's scope
    ("c05", "c00", "REFERRED"),  # out of the partner's scope
    ("c00", "c03", "KNOWS"),
]


@pytest.fixture
async def shop(store: GraphStore, tmp_path: Path) -> None:
    """c00 with six one-line orders and a newest one of six lines, six contacts, seven ties;
    each of c01..c07 bought p1 once (two units)."""
    folder = tmp_path / "shop"
    write_csv(folder / "customers.csv", [
        {"customer_id": f"c{i:02d}", "name": f"N{i}", "country": "GB"} for i in range(8)
    ])  # fmt: skip
    write_csv(folder / "products.csv", [
        {"product_id": f"p{i}", "name": f"P{i}", "category": "K", "price": "1"} for i in range(1, 7)
    ])  # fmt: skip
    lines = [
        {"transaction_id": f"t{i:02d}", "customer_id": "c00", "timestamp": day,
         "product_id": "p1", "quantity": "1", "unit_price": "1"}
        for i, day in enumerate(DAYS)
    ] + [
        {"transaction_id": "t06", "customer_id": "c00", "timestamp": "2024-04-01",
         "product_id": f"p{p}", "quantity": str(q), "unit_price": "1"}
        for p, q in zip(range(1, 7), [1, 2, 2, 1, 1, 3], strict=True)
    ] + [
        {"transaction_id": f"u{i:02d}", "customer_id": f"c{i:02d}", "timestamp": "2024-01-05",
         "product_id": "p1", "quantity": "2", "unit_price": "1"}
        for i in range(1, 8)
    ]  # fmt: skip
    write_csv(folder / "transactions.csv", lines)
    write_csv(folder / "interactions.csv", [
        {"interaction_id": f"i{i:02d}", "customer_id": "c00", "timestamp": day,
         "type": "call" if i % 2 else "email"}
        for i, day in enumerate(DAYS)
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": s, "target_customer_id": t, "type": k} for s, t, k in TIES
    ])  # fmt: skip
    await load_folder(store, folder, progress=False)


def _tie_order(ties: list[tuple[str, str, str]]) -> list[str]:
    """c00's ties as `socialTies` orders them: by type, then the other customer's id, then
    the incoming one first (' <' sorts before ' >')."""
    seen = [
        (k, t if s == "c00" else s, "OUTGOING" if s == "c00" else "INCOMING") for s, t, k in ties
    ]
    return [
        f"{k} {o} {d}" for k, o, d in sorted(seen, key=lambda x: (x[0], x[1], x[2] == "OUTGOING"))
    ]


@dataclass(frozen=True)
class Relation:
    document: str
    """A query with `{args}` where the connection's arguments go and `{sel}` its selection."""
    path: tuple[str, ...]
    """Where the connection is in the answer."""
    item: str
    """The node's selection."""
    name: Callable[[dict[str, Any]], str]
    """What identifies a node in the expected order."""
    expected: list[str]
    """Every item, in the connection's order, for an admin."""
    scoped: list[str] | None = None
    """Every item for the partner limited to `IN_SCOPE` (None: as `expected`)."""


def _customer(field: str) -> str:
    return 'query { customer(id: "c00") { id ' + field + "({args}) {sel} } }"


RELATIONS = {
    "transactions": Relation(
        _customer("transactions"), ("customer", "transactions"), "id at",
        lambda n: n["id"], ["t06", "t05", "t04", "t03", "t02", "t01", "t00"],
    ),
    "interactions": Relation(
        _customer("interactions"), ("customer", "interactions"), "id type",
        lambda n: n["id"], ["i05", "i04", "i03", "i02", "i01", "i00"],
    ),
    "productsBought": Relation(
        _customer("productsBought"), ("customer", "productsBought"), "product { id } quantity",
        lambda n: n["product"]["id"], ["p1", "p6", "p2", "p3", "p4", "p5"],
    ),
    "socialTies": Relation(
        _customer("socialTies"), ("customer", "socialTies"),
        "type direction customer { id }",
        lambda n: f"{n['type']} {n['customer']['id']} {n['direction']}",
        _tie_order(TIES),
        _tie_order([t for t in TIES if t[0] in IN_SCOPE and t[1] in IN_SCOPE]),
    ),
    "lines": Relation(
        'query { customer(id: "c00") { transactions(first: 1) { nodes { lines({args}) {sel} '
        "} } } }",
        ("customer", "transactions", "nodes", 0, "lines"), "product { id } quantity",  # type: ignore[arg-type]
        lambda n: n["product"]["id"], ["p1", "p2", "p3", "p4", "p5", "p6"],
    ),
    "buyers": Relation(
        'query { product(id: "p1") { buyers({args}) {sel} } }', ("product", "buyers"),
        "customer { id } quantity",
        lambda n: n["customer"]["id"], ["c00", "c01", "c02", "c03", "c04", "c05", "c06", "c07"],
        ["c00", "c01", "c02", "c03"],
    ),
}  # fmt: skip

PAGE = "{ edges { cursor node { ITEM } } nodes { ITEM } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount }"  # noqa: E501


def _document(relation: Relation, args: str, *, aliased: bool) -> str:
    selection = PAGE.replace("ITEM", relation.item)
    document = relation.document.replace("{sel}", selection)
    document = document.replace("({args})", f"({args})" if args else "")
    if aliased:  # the view takes the first occurrence: the second is loaded by its own statement
        field = relation.path[-1]
        document = document.replace(
            f"{field}(", f"a: {field}(first: 0) {{ totalCount }} {field}(", 1
        )
    return document


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


async def _walk(api: Api, relation: Relation, size: int, *, backwards: bool, aliased: bool
                ) -> tuple[list[str], dict[str, str], int]:  # fmt: skip
    """Every item, page by page (`size` each), forwards from the start or backwards from the
    end; the cursor each item had; the total count (the same on every page)."""
    names: list[str] = []
    cursors: dict[str, str] = {}
    totals = set()
    cursor: str | None = None
    pages = 0
    while True:
        if backwards:
            args = f"last: {size}" + (f', before: "{cursor}"' if cursor else "")
        else:
            args = f"first: {size}" + (f', after: "{cursor}"' if cursor else "")
        connection = _at(await api.data(_document(relation, args, aliased=aliased)), relation.path)
        pages += 1
        found = [relation.name(e["node"]) for e in connection["edges"]]
        assert [relation.name(n) for n in connection["nodes"]] == found
        for edge in connection["edges"]:
            cursors[relation.name(edge["node"])] = edge["cursor"]
        info = connection["pageInfo"]
        totals.add(connection["totalCount"])
        if found:
            assert info["startCursor"] == connection["edges"][0]["cursor"]
            assert info["endCursor"] == connection["edges"][-1]["cursor"]
        # a cursor given says there is something on the side it came from
        assert info["hasNextPage" if backwards else "hasPreviousPage"] == (cursor is not None)
        more = info["hasPreviousPage" if backwards else "hasNextPage"]
        names = found + names if backwards else names + found
        if not more:
            break
        assert len(found) == size
        cursor = info["startCursor" if backwards else "endCursor"]
        assert pages < 20
    assert len(totals) == 1
    return names, cursors, totals.pop()


@pytest.mark.parametrize("aliased", [False, True], ids=["in-view", "loaded"])
@pytest.mark.parametrize("field", list(RELATIONS))
async def test_each_relation_pages_both_ways_with_stable_cursors(
    shop: None, admin: Api, field: str, aliased: bool
) -> None:
    """Given c00's relations, when a client pages through one two items at a time forwards,
    then three at a time backwards, then both walks find every item once in the documented
    order, each item keeps its cursor, and totalCount counts them all."""
    relation = RELATIONS[field]
    forwards, cursors, total = await _walk(admin, relation, 2, backwards=False, aliased=aliased)
    assert forwards == relation.expected
    assert total == len(relation.expected)
    backwards, again, total = await _walk(admin, relation, 3, backwards=True, aliased=aliased)
    assert backwards == relation.expected
    assert again == cursors
    assert total == len(relation.expected)


@pytest.mark.parametrize("field", list(RELATIONS))
async def test_a_page_over_the_maximum_is_refused_naming_the_argument(
    shop: None, admin: Api, field: str
) -> None:
    relation = RELATIONS[field]
    name = relation.path[-1]
    for argument in ("first", "last"):
        document = _document(relation, f"{argument}: {MAX_PAGE + 1}", aliased=False)
        errors = await admin.errors(document)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
        assert errors[0]["extensions"]["field"] == f"{name}.{argument}", errors
    errors = await admin.errors(_document(relation, 'first: 2, after: "nonsense"', aliased=False))
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}, errors
    # a cursor of another relation is refused, not read as this one's
    other = "transactions" if field != "transactions" else "interactions"
    cursor = _at(
        await admin.data(_document(RELATIONS[other], "first: 1", aliased=False)),
        RELATIONS[other].path,
    )["edges"][0]["cursor"]
    errors = await admin.errors(_document(relation, f'first: 2, after: "{cursor}"', aliased=False))
    assert errors[0]["extensions"]["field"] == "after", errors


@pytest.mark.parametrize("field", list(RELATIONS))
async def test_each_relation_is_charged_by_its_page_size(
    shop: None, admin: Api, field: str
) -> None:
    relation = RELATIONS[field]

    async def cost(args: str) -> int:
        response = await admin.post(_document(relation, args, aliased=False))
        body = response.json()
        assert "errors" not in body, body
        return int(body["extensions"]["cost"]["requested"])

    small, large, backwards, default = (
        await cost("first: 1"), await cost("first: 50"), await cost("last: 50"), await cost("")
    )  # fmt: skip
    assert small < default < large == backwards
    # one more item costs at least the node and edge it adds
    assert await cost("first: 51") - large >= 2


@pytest.mark.parametrize("aliased", [False, True], ids=["in-view", "loaded"])
@pytest.mark.parametrize("field", ["socialTies", "buyers"])
async def test_a_scoped_key_never_sees_nor_counts_customers_outside(
    shop: None, api_for: Callable[..., Any], field: str, aliased: bool
) -> None:
    """Given a partner key limited to c00..c03, when it pages c00's ties or p1's buyers, then
    the customers outside its scope are on no page and in no count, and paging both ways
    still finds every one inside once."""
    partner = await api_for(
        Role.PARTNER,
        scopes=broad_partner_scopes(),
        customers=CustomerScope(ids=IN_SCOPE),
    )
    relation = RELATIONS[field]
    assert relation.scoped is not None
    forwards, cursors, total = await _walk(partner, relation, 2, backwards=False, aliased=aliased)
    assert forwards == relation.scoped
    assert total == len(relation.scoped)
    backwards, again, _ = await _walk(partner, relation, 3, backwards=True, aliased=aliased)
    assert backwards == relation.scoped and again == cursors
