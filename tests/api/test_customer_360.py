"""The 360 view through the real ASGI app, checked against figures pandas computes independently
from the same input files."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from graphql import get_named_type, is_leaf_type

from bench.api import GRAPHQL_360
from crm_graph.api import app as app_module
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.customers import planner
from crm_graph.api.customers.planner import (
    CUSTOMER_READS,
    INTERACTION_READS,
    LINE_ITEM_READS,
    PRODUCT_READS,
    SOCIAL_TIE_READS,
    TRANSACTION_READS,
    NodeReads,
)
from crm_graph.api.schema import schema
from crm_graph.graph import customer_reads
from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate
from tests.conftest import Api
from tests.helpers import AUDIT, broad_partner_scopes

CUSTOMER_360 = """
query Customer360($id: ID!) {
  customer(id: $id) {
    id name email phone city country signupAt attributes
    totalSpend orderCount firstPurchaseAt lastPurchaseAt
    transactions(first: 5) { nodes { id at total channel lines { nodes { product { id category
      } quantity amount } } } }
    interactions(first: 100) { nodes { id type at sentiment } }
    tickets: interactions(types: [TICKET], first: 100) { nodes { id type } }
    productsBought(first: 100) { nodes { product { id } quantity orders spend } }
    socialTies { nodes { type direction since weight customer { id name } } }
    segments { id }
  }
}
"""


@pytest.fixture
async def business(store: GraphStore, tmp_path: Path) -> dict[str, Any]:
    """A generated business loaded into the store, and pandas frames of the same files with
    every source id mapped to the customer it resolved to."""
    folder = tmp_path / "biz"
    generate(folder, 400, seed=11)
    report = await load_folder(store, folder, progress=False)
    assert report.rows_rejected == 0
    merges = pd.read_csv(report.merges_path, dtype=str)
    canonical = dict(zip(merges["merged_customer_id"], merges["customer_id"], strict=True))
    lines = pd.read_csv(folder / "transactions.csv", dtype={"customer_id": str})
    lines["customer"] = lines["customer_id"].map(lambda c: canonical.get(c, c))
    lines["at"] = pd.to_datetime(lines["timestamp"], utc=True)
    interactions = pd.read_csv(folder / "interactions.csv", dtype={"customer_id": str})
    interactions["customer"] = interactions["customer_id"].map(lambda c: canonical.get(c, c))
    ties = pd.read_csv(folder / "social_ties.csv", dtype=str)
    ties["a"] = ties["source_customer_id"].map(lambda c: canonical.get(c, c))
    ties["b"] = ties["target_customer_id"].map(lambda c: canonical.get(c, c))
    return {"lines": lines, "interactions": interactions, "ties": ties, "merged": canonical}


def _busiest(lines: pd.DataFrame, merged: dict[str, str], n: int) -> list[str]:
    """Customers with the most orders, merged ones first (the hardest case)."""
    orders = lines.groupby("customer")["transaction_id"].nunique().sort_values(ascending=False)
    merged_people = [c for c in orders.index if c in set(merged.values())][:2]
    return (
        merged_people
        + [c for c in orders.index if c not in merged_people][: n - len(merged_people)]
    )


async def test_the_360_view_matches_pandas(business: dict[str, Any], admin: Api) -> None:
    lines, interactions, ties = business["lines"], business["interactions"], business["ties"]
    for customer_id in _busiest(lines, business["merged"], 5):
        view = (await admin.data(CUSTOMER_360, id=customer_id))["customer"]
        own = lines[lines["customer"] == customer_id]
        orders = own.groupby("transaction_id").agg(total=("amount", "sum"), at=("at", "min"))
        # totals and counts
        assert view["orderCount"] == len(orders)
        assert view["totalSpend"] == pytest.approx(own["amount"].sum(), abs=0.01)
        assert pd.Timestamp(view["firstPurchaseAt"]) == orders["at"].min()
        assert pd.Timestamp(view["lastPurchaseAt"]) == orders["at"].max()
        # the newest five orders, newest first, with their totals and lines
        newest = orders.sort_values("at", ascending=False).head(5)
        assert [t["total"] for t in view["transactions"]["nodes"]] == pytest.approx(
            list(newest["total"]), abs=0.01
        )
        for t in view["transactions"]["nodes"]:
            expected = own[own["transaction_id"] == t["id"]]
            assert sum(line["amount"] for line in t["lines"]["nodes"]) == pytest.approx(
                expected["amount"].sum(), abs=0.01
            )
        # contacts as a timeline, and filtered by type
        contacts = interactions[interactions["customer"] == customer_id]
        assert len(view["interactions"]["nodes"]) == len(contacts)
        stamps = [i["at"] for i in view["interactions"]["nodes"]]
        assert stamps == sorted(stamps, reverse=True)
        assert len(view["tickets"]["nodes"]) == int((contacts["type"] == "ticket").sum())
        # products bought with counts
        bought = own.groupby("product_id")["quantity"].sum()
        assert {p["product"]["id"]: p["quantity"] for p in view["productsBought"]["nodes"]} == (
            pytest.approx(bought.to_dict())
        )
        # social ties, both directions
        mine = ties[(ties["a"] == customer_id) | (ties["b"] == customer_id)]
        assert len(view["socialTies"]["nodes"]) == len(mine)
        assert {t["customer"]["id"] for t in view["socialTies"]["nodes"]} == (
            set(mine["a"]) | set(mine["b"])
        ) - {customer_id}


async def test_an_unknown_customer_is_null(store: GraphStore, admin: Api) -> None:
    assert (await admin.data('{ customer(id: "nobody") { id } }')) == {"customer": None}


FIGURES = "orderCount totalSpend firstPurchaseAt lastPurchaseAt"


async def test_order_figures_come_with_the_profile(
    business: dict[str, Any], store: GraphStore, admin: Api
) -> None:
    """Given customers with orders, when a 360 asks for the order figures (directly or through a
    fragment), then they cost no statement of their own and equal the figures the same
    customers get as the other end of a tie (fetched by their own statement)."""
    busiest = _busiest(business["lines"], business["merged"], 5)

    async def round_trips(query: str, **variables: Any) -> tuple[int, dict[str, Any]]:
        before = store.round_trips
        data = await admin.data(query, **variables)
        return store.round_trips - before, data

    await admin.data("{ __typename }")  # the key's first use is recorded once a minute
    key_only, _ = await round_trips("{ __typename }")
    plain, _ = await round_trips("query($id: ID!) { customer(id: $id) { id } }", id=busiest[0])
    direct, _ = await round_trips(
        f"query($id: ID!) {{ customer(id: $id) {{ id {FIGURES} }} }}", id=busiest[0]
    )
    spread, _ = await round_trips(
        "query($id: ID!) { customer(id: $id) { ...F } } "
        f"fragment F on Customer {{ {FIGURES} }}",
        id=busiest[0],
    )
    assert plain == direct == spread == key_only + 1 + AUDIT
    compared = 0
    for customer_id in busiest:
        ties = (await admin.data(
            "query($id: ID!) { customer(id: $id) { socialTies { nodes { customer { id "
            f"{FIGURES} }} }} }} }} }}",
            id=customer_id,
        ))["customer"]["socialTies"]["nodes"]  # fmt: skip
        for tie in ties:
            other = tie["customer"]
            alone = await admin.data(
                f"query($id: ID!) {{ customer(id: $id) {{ id {FIGURES} }} }}", id=other["id"]
            )
            assert alone["customer"] == other
            compared += other["orderCount"] > 0
    assert compared > 0


VIEW_PARTS = (
    f"{FIGURES} transactions(first: 3) {{ nodes {{ id at total lines {{ nodes {{ quantity amount "
    "product { id } } } } } interactions(first: 4) { nodes { id type at } } "
    "calls: interactions(types: [CALL]) { nodes { id } } "
    "socialTies(first: 100) { nodes { type direction since weight customer { id } } }"
)


async def test_the_parts_of_the_360_come_with_the_profile(
    business: dict[str, Any], store: GraphStore, admin: Api
) -> None:
    """Given customers with orders, contacts and ties, when a 360 asks for the order figures, a
    page of orders with their lines, a page of contacts and the ties, then it costs one
    statement (a second page of contacts under an alias, one more), and each part equals what
    the same customer gets as the other end of a tie, where every part is loaded by its own
    statement."""
    busiest = _busiest(business["lines"], business["merged"], 5)
    await admin.data("{ __typename }")  # the key's first use is recorded once a minute
    before = store.round_trips
    await admin.data("{ __typename }")
    key_only = store.round_trips - before

    async def round_trips(parts: str) -> int:
        before = store.round_trips
        await admin.data(f"query($id: ID!) {{ customer(id: $id) {{ id {parts} }} }}", id=busiest[0])
        return store.round_trips - before

    assert (
        await round_trips(
            VIEW_PARTS.replace("calls: interactions(types: [CALL]) { nodes { id } } ", "")
        )
        == key_only + 1 + AUDIT
    )
    assert await round_trips(VIEW_PARTS) == key_only + 2 + AUDIT
    compared = 0
    for customer_id in busiest:
        view = (await admin.data(
            f"query($id: ID!) {{ customer(id: $id) {{ id {VIEW_PARTS} "
            f"socialTies(first: 100) {{ nodes {{ customer {{ id {VIEW_PARTS} }} }} }} }} }}",
            id=customer_id,
        ))["customer"]  # fmt: skip
        for tie in view["socialTies"]["nodes"]:
            other = tie["customer"]
            alone = await admin.data(
                f"query($id: ID!) {{ customer(id: $id) {{ id {VIEW_PARTS} }} }}", id=other["id"]
            )
            assert alone["customer"] == other
            compared += bool(other["transactions"]["nodes"] and other["interactions"]["nodes"])
    assert compared > 0


# -- of the nodes below the profile, the view reads what the selection needs -------------------

BELOW_THE_PROFILE: dict[str, tuple[str, NodeReads, str]] = {
    # GraphQL type: the selection reaching its fields, what its objects read of their node, and
    # the view's properties of that node
    "Transaction": (
        "transactions(first: 10) { nodes { %s } }",
        TRANSACTION_READS,
        "transaction_properties",
    ),
    "LineItem": (
        "transactions(first: 10) { nodes { lines { nodes { %s } } } }",
        LINE_ITEM_READS,
        "product_properties",
    ),
    "Product": (
        "transactions(first: 10) { nodes { lines { nodes { product { %s } } } } }",
        PRODUCT_READS,
        "product_properties",
    ),
    "Interaction": (
        "interactions(first: 50) { nodes { %s } }",
        INTERACTION_READS,
        "interaction_properties",
    ),
    "SocialTie": ("socialTies { nodes { %s } }", SOCIAL_TIE_READS, "tie_customer_properties"),
    "Customer": (
        "socialTies { nodes { customer { %s } } }",
        CUSTOMER_READS,
        "tie_customer_properties",
    ),
}


@pytest.fixture
def views(monkeypatch: pytest.MonkeyPatch) -> list[customer_reads.CustomerView]:
    """The views of the 360 statements the app builds, as it builds them."""
    built: list[customer_reads.CustomerView] = []
    build = customer_reads.customer_view_query

    def recorded(
        view: customer_reads.CustomerView, scope: CustomerScope = EVERYONE
    ) -> tuple[str, dict[str, Any]]:
        built.append(view)
        return build(view, scope)

    monkeypatch.setattr(customer_reads, "customer_view_query", recorded)
    return built


async def _both_ways(
    admin: Api,
    monkeypatch: pytest.MonkeyPatch,
    views: list[customer_reads.CustomerView],
    parts: str,
    ids: list[str],
) -> tuple[dict[str, Any], dict[str, Any], list[customer_reads.CustomerView]]:
    """The 360s of `ids` with `parts` (one request): with the nodes' properties the selection
    needs, then with whole nodes; and the views of the first."""
    declared = ", ".join(f"$c{n}: ID!" for n in range(len(ids)))
    asked = " ".join(f"c{n}: customer(id: $c{n}) {{ id {parts} }}" for n in range(len(ids)))
    query = f"query({declared}) {{ {asked} }}"
    variables = {f"c{n}": customer_id for n, customer_id in enumerate(ids)}
    views.clear()
    selected = await admin.data(query, **variables)
    built = list(views)
    with monkeypatch.context() as patch:
        patch.setattr(planner, "READ_SELECTED_PROPERTIES", False)
        whole = await admin.data(query, **variables)
    return selected, whole, built


def _values(answer: Any, key: str) -> list[Any]:
    """Every value under `key` in an answer."""
    if isinstance(answer, list):
        return [v for item in answer for v in _values(item, key)]
    if isinstance(answer, dict):
        own = [answer[key]] if key in answer else []
        return own + [v for k, item in answer.items() if k != key for v in _values(item, key)]
    return []


async def test_each_field_below_the_profile_answers_as_with_whole_nodes(
    business: dict[str, Any],
    store: GraphStore,
    admin: Api,
    views: list[customer_reads.CustomerView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given customers with orders, contacts and ties, when a 360 asks for one field of the
    orders, their lines, the products, the contacts, the ties or the ties' customers (each field
    the schema has, one at a time), then it answers as when the view reads whole nodes; the view
    reads only some properties of the node exactly when the field's type lists the field
    (`NodeReads`); and each listed field answers, somewhere, a value that a missing property
    would not give (null, 0, empty), so that a field listed with too few properties fails."""
    ids = _busiest(business["lines"], business["merged"], 6)
    await store.write(  # the generated orders' lines all name a product: some value the others
        "MATCH (:Customer {id: $id})-[:PLACED]->(t:Transaction) SET t.otherAmount = 2.5",
        {"id": ids[0]},
    )
    graphql_schema = schema._schema
    for type_name, (path, reads, part) in BELOW_THE_PROFILE.items():
        fields = graphql_schema.get_type(type_name).fields
        assert set(reads.by_field) <= set(fields), type_name
        through = reads.through[0] if reads.through else None
        for name, definition in fields.items():
            field = (type_name, name)
            leaf = is_leaf_type(get_named_type(definition.type))
            parts = path % (name if leaf else f"{name} {{ __typename }}")
            selected, whole, built = await _both_ways(admin, monkeypatch, views, parts, ids)
            assert selected == whole, field
            listed = name in reads.by_field or name == through
            assert {getattr(view, part) is not None for view in built} == {listed}, field
            if listed and leaf:
                assert any(v not in (None, 0, "") for v in _values(whole, name)), field


ALIASES_AND_FRAGMENTS = """
query($id: ID!) {
  customer(id: $id) {
    recent: interactions(first: 5) { nodes { type } }
    ...Parts
    ... on Customer { socialTies { nodes { customer { name } } } }
    socialTies { nodes { kind: type customer { id } } }
  }
}
fragment Parts on Customer {
  latest: interactions(first: 5) { nodes { subject } }
  transactions(first: 3) { nodes { id ...Order } }
  transactions(first: 3) { nodes { lines { nodes { amount product { category } } } } }
}
fragment Order on Transaction { total lines { nodes { product { name } } } }
"""


async def test_aliases_and_fragments_read_what_they_ask_for_together(
    business: dict[str, Any],
    admin: Api,
    views: list[customer_reads.CustomerView],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given customers with orders, contacts and ties, when a 360 asks for different fields of
    the same parts under aliases, in named and inline fragments, then the view reads of each
    part's nodes the properties all of them need (and what is always read: ids, dates), in one
    statement, and the 360 answers as when the view reads whole nodes."""
    customer_id = _busiest(business["lines"], business["merged"], 1)[0]
    views.clear()
    selected = await admin.data(ALIASES_AND_FRAGMENTS, id=customer_id)
    (view,) = views
    assert (view.transaction_properties, view.product_properties) == (
        ("at", "id", "total"), ("category", "id", "name")
    )  # fmt: skip
    assert view.interaction_properties == ("at", "id", "subject", "type")
    assert view.tie_customer_properties == ("id", "name")
    with monkeypatch.context() as patch:
        patch.setattr(planner, "READ_SELECTED_PROPERTIES", False)
        assert await admin.data(ALIASES_AND_FRAGMENTS, id=customer_id) == selected
    assert selected["customer"]["transactions"]["nodes"][0]["lines"]["nodes"][0]["product"][
        "category"
    ]
    assert {i["subject"] for i in selected["customer"]["latest"]["nodes"]} != {None}


async def test_the_benchmark_360_reads_the_properties_it_shows(
    business: dict[str, Any], admin: Api, views: list[customer_reads.CustomerView]
) -> None:
    """Given a customer, when the benchmark's 360 (bench/api.py) asks for it, then the view
    reads of the orders, products, contacts and ties' customers the properties shown and the
    ones always read, and of the profile the whole node."""
    views.clear()
    await admin.data(GRAPHQL_360, id=_busiest(business["lines"], business["merged"], 1)[0])
    (view,) = views
    assert view.transaction_properties == ("at", "id", "total")
    assert view.product_properties == ("category", "id", "name")
    assert view.interaction_properties == ("at", "id", "type")
    assert view.tie_customer_properties == ("id", "name")
    query, _ = customer_reads.customer_view_query(view)
    assert "properties(c) AS customer" in query
    assert query.count("properties(") == 1


# -- the execution short cuts answer as graphql-core does, on the real app ---------------------

EXPLORING = {
    "customers": """query($after: String) { customers(first: 7, after: $after,
        orderBy: {field: TOTAL_SPEND, direction: DESC}, where: {orderCount: {gte: 1}}) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { cursor node { id name email phone country totalSpend orderCount
                              lastPurchaseAt socialTies { nodes { type customer { id email } } } } } } }""",  # noqa: E501
    "search": '{ searchCustomers(text: "an", first: 5) { nodes { id name email phone city } } }',
    "neighbourhood": """query($id: ID!) { neighbourhood(id: $id, depth: 2) { truncated
        center { id name } members { distance customer { id name email orderCount } }
        ties { sourceId targetId type since weight } } }""",
    "products": """{ products(first: 5) { pageInfo { hasNextPage endCursor }
        nodes { id name category price
                buyers(first: 3) { nodes { quantity orders spend customer { id phone } } } } }
        categories { name productCount } }""",
    "revenue": """{ byMonth: revenue(by: MONTH) { key revenue orders customers }
        byCountry: revenue(by: COUNTRY) { key revenue orders customers } }""",
    "unknown customer": """{ customer(id: "nobody") { id name } path(from: "nobody", to: "x")
        { length } }""",
}


async def test_the_fast_execution_answers_as_graphql_core_does(
    business: dict[str, Any],
    store: GraphStore,
    api_for: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given a business, when the same requests go to the app and to an app whose schema runs
    graphql-core's and Strawberry's own execution (`build_schema(fast=False)`), with an admin
    key and with a partner key (masked fields, denied aggregates), then the answers are the
    same: data, errors and their paths."""
    monkeypatch.setattr(
        app_module, "build_schema", functools.partial(app_module.build_schema, fast=False)
    )
    plain_app = app_module.create_app(
        StoreSettings(), store=store, rate_limiter=None, points_limiter=None
    )
    monkeypatch.undo()
    busiest = _busiest(business["lines"], business["merged"], 4)
    requests = [(CUSTOMER_360, {"id": c}) for c in busiest]
    requests += [(GRAPHQL_360, {"id": c}) for c in busiest]
    requests += [
        (f"query($id: ID!) {{ customer(id: $id) {{ id {VIEW_PARTS} "
         f"socialTies(first: 100) {{ nodes {{ customer {{ id email {VIEW_PARTS} }} }} }} }} }}",
         {"id": busiest[0]}),
        *((query, {"id": busiest[1]}) for query in EXPLORING.values()),
    ]  # fmt: skip
    transport = httpx.ASGITransport(app=plain_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = []
        for role in (Role.ADMIN, Role.PARTNER):
            scopes = broad_partner_scopes() if role is Role.PARTNER else None
            fast = await api_for(role, scopes=scopes)
            _, key = await create_key(store, role, f"plain {role.value}", scopes=scopes)
            plain = Api(client, key)
            for query, variables in requests:
                answers = []
                for api in (fast, plain):
                    response = await api.post(query, variables)
                    assert response.status_code == 200, response.text
                    answers.append(response.json())
                assert answers[0] == answers[1], (role, query)
                if "errors" in answers[0]:
                    refused.append((role, [e["extensions"]["field"] for e in answers[0]["errors"]]))
    # every request answered in full, but the aggregates over all customers to a partner (refused
    # whole, before execution, by the key's scopes)
    assert refused == [(Role.PARTNER, ["totalCount"]), (Role.PARTNER, ["revenue"])]


async def test_one_document_with_other_variables_gets_other_pages(
    business: dict[str, Any], store: GraphStore, admin: Api
) -> None:
    """What a selection asks of the 360 statement is worked out once per document; the pages'
    arguments are read per request: the same document with other variables (page sizes, a date
    range, contact types) answers as the same selection with those values written in, and its
    pages still come with the profile (one statement besides the key's)."""
    busiest = _busiest(business["lines"], business["merged"], 2)
    document = """query($id: ID!, $n: Int!, $from: DateTime, $kinds: [InteractionType!]) {
      customer(id: $id) { id totalSpend
        transactions(first: $n, from: $from) { nodes { id at lines { nodes { quantity product {
          id } } } } }
        interactions(first: $n, types: $kinds) { nodes { id type } } } }"""
    cases = [(1, None, None), (4, None, ["CALL", "EMAIL"]), (2, "2024-01-01T00:00:00Z", None),
             (0, None, ["TICKET"])]  # fmt: skip
    for customer_id in busiest:
        for n, since, kinds in cases:
            date = f', from: "{since}"' if since else ""
            types = f", types: [{', '.join(kinds)}]" if kinds else ""
            written = (
                f'query {{ customer(id: "{customer_id}") {{ id totalSpend '
                f"transactions(first: {n}{date}) {{ nodes {{ id at lines {{ nodes {{ quantity product "  # noqa: E501
                f"{{ id }} }} }} }} }} interactions(first: {n}{types}) {{ nodes {{ id type }} }} }} }}"  # noqa: E501
            )
            expected = await admin.data(written)
            before = store.round_trips
            got = await admin.data(document, id=customer_id, n=n, **{"from": since}, kinds=kinds)
            # the key (touched once a minute), the 360, the audit entry
            assert store.round_trips - before <= 2 + AUDIT
            assert got == expected, (customer_id, n, since, kinds)
            assert len(got["customer"]["transactions"]["nodes"]) <= n
