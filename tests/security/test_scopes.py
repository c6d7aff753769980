"""Scoped keys: every root query field × scope preset × a customer in and out of the key's customer
scope, on both engines; the enumeration attack and the aggregate rebuild attacks of issue 21.

The shop's customers c00, c01, c03 and c04 have a source record of the system `acme`; a key
limited to `source:acme` must find the others nowhere: not by id (the same answer as an unknown
id), not in lists, searches, filters reaching through ties, neighbourhoods, paths, ties or a
product's buyers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_graph.api.auth.keys import create_key, list_keys
from crm_graph.api.auth.principal import Role
from crm_graph.api.auth.scopes import PRESETS, SCOPES, Scope
from crm_graph.graph.access import CustomerScope
from crm_graph.graph.store import GraphStore
from tests.conftest import Api
from tests.helpers import broad_partner_scopes
from tests.security.documents import QUERY

ACME = CustomerScope(systems=("acme",))
IN_SCOPE = {"c00", "c01", "c03", "c04"}
ALL = {f"c{i:02d}" for i in range(12)}
NAMES = ["Ann", "Bob", "Ann", "Cy", "Dee", "Bob", "Eve", "Ann", "Fay", "Gus", "Hal", "Ivy"]


@pytest.fixture
async def acme_shop(shop: None, store: GraphStore) -> None:
    """The shop, with an `acme` source record on c00, c01, c03, c04, and PageRank scores."""
    await store.write(
        "UNWIND $ids AS id MATCH (c:Customer {id: id}) "
        "CREATE (c)-[:HAS_SOURCE]->(:SourceRecord {id: 'acme-' + id, system: 'acme', "
        "sourceId: id})",
        {"ids": sorted(IN_SCOPE)},
    )
    await store.write(
        "MATCH (c:Customer) SET c.mlPagerank = 1.0 / (1 + toInteger(substring(c.id, 1)))"
    )


@dataclass(frozen=True)
class Probe:
    """A document for a root field about one customer: `$id` and `$name` are its id and name."""

    document: str
    needs: frozenset[Scope] = frozenset()
    inside: str = "c03"
    outside: str = "c06"
    by_id: bool = False
    """The customer is named by id: out of scope, the answer equals an unknown id's."""
    reveals: bool = True
    """The answer names the customer when the key may see it."""


PROBES = {
    "customer": Probe("query($id: ID!) { customer(id: $id) { id name } }", by_id=True),
    "customers": Probe(
        "query($id: ID!) { customers(where: {id: {eq: $id}}) { nodes { id } } }",
        frozenset({Scope.LIST}),
    ),
    "customers.knows": Probe(
        "query($name: String!) { customers(where: {knows: {name: {eq: $name}}}, first: 50) "
        "{ nodes { id } } }",
        frozenset({Scope.LIST}),
        inside="c04",  # c03 knows c04 (in scope) and c06 (not): asked by the other's name
        outside="c06",
        reveals=False,
    ),
    "searchCustomers": Probe(
        "query($name: String!) { searchCustomers(text: $name, first: 50) { nodes { id } } }",
        frozenset({Scope.LIST}),
    ),
    "neighbourhood": Probe(
        "query($id: ID!) { neighbourhood(id: $id, depth: 2) { center { id } "
        "members { customer { id } } } }",
        frozenset({Scope.TIES}),
        by_id=True,
    ),
    "neighbourhood.through": Probe(
        'query($id: ID!) { neighbourhood(id: "c04", depth: 3) { members { customer { id } } '
        "ties { sourceId targetId } } c: customer(id: $id) { id } }",
        frozenset({Scope.TIES}),
        inside="c03",
        outside="c06",
    ),
    "path": Probe(
        'query($id: ID!) { path(from: $id, to: "c04") { customers { id } } }',
        frozenset({Scope.TIES}),
        by_id=True,
    ),
    "customer.socialTies": Probe(
        'query($id: ID!) { customer(id: "c03") { socialTies { nodes { customer { id } } } } '
        "other: customer(id: $id) { id } }",
        frozenset({Scope.TIES}),
        inside="c04",
        outside="c06",
    ),
    "products": Probe("{ products { nodes { id } } }", reveals=False),
    "product": Probe('{ product(id: "p1") { id name } }', reveals=False),
    "product.buyers": Probe(
        'query($id: ID!) { product(id: "p1") { buyers(first: 50) { nodes { customer { id } } } } '
        "c: customer(id: $id) { id } }",
        frozenset({Scope.LIST}),
        inside="c00",
        outside="c02",
    ),
    "categories": Probe("{ categories { name } }", reveals=False),
    "revenue": Probe(
        "{ revenue(by: COUNTRY) { key revenue } }", frozenset({Scope.AGGREGATES}), reveals=False
    ),
    "segments": Probe("{ segments { id size } }", frozenset({Scope.AGGREGATES}), reveals=False),
    "influencers": Probe("{ influencers(first: 50) { id } }", frozenset({Scope.AGGREGATES})),
    "communities": Probe("{ communities { id } }", frozenset({Scope.AGGREGATES}), reveals=False),
    "modelCards": Probe("{ modelCards { id } }", frozenset({Scope.AGGREGATES}), reveals=False),
    "auditLog": Probe(
        "query($id: ID!) { auditLog(customerId: $id) { nodes { keyId } } }",
        frozenset({Scope.ADMIN}),
        reveals=False,
    ),
    "rateLimit": Probe("{ rateLimit { cost limit remaining } }", reveals=False),
    "churnRiskDistribution": Probe(
        "{ churnRiskDistribution { customers } }", frozenset({Scope.AGGREGATES}), reveals=False
    ),
    "mostAtRisk": Probe(
        "{ mostAtRisk(first: 5) { id } }",
        frozenset({Scope.AGGREGATES}),
        reveals=False,
    ),
    "segmentMap": Probe(
        "{ segmentMap { points { customerId } } }", frozenset({Scope.AGGREGATES}), reveals=False
    ),
    "savedViews": Probe("{ savedViews { name } }", frozenset({Scope.SAVED_VIEWS}), reveals=False),
    "savedView": Probe(
        '{ savedView(name: "none") { name } }', frozenset({Scope.SAVED_VIEWS}), reveals=False
    ),
    "customerExport": Probe(
        "query($id: ID!) { customerExport(id: $id) }", frozenset({Scope.ADMIN}), by_id=True
    ),
    "webhooks": Probe("{ webhooks { id url } }", frozenset({Scope.ADMIN}), reveals=False),
    "webhookDeliveries": Probe(
        '{ webhookDeliveries(id: "wh_x") { nodes { id } } }',
        frozenset({Scope.ADMIN}),
        reveals=False,
    ),
}
"""A probe per root query field (and per path inside one that reaches other customers)."""

CALLERS: dict[str, tuple[Role, frozenset[Scope] | None, CustomerScope | None]] = {
    "admin": (Role.ADMIN, None, None),
    "analyst": (Role.ANALYST, None, None),
    "partner": (Role.PARTNER, None, None),
    "partner acme": (Role.PARTNER, None, ACME),
    "reader acme": (Role.PARTNER, broad_partner_scopes(), ACME),
}
"""The presets, and partner keys limited to the acme customers (the preset, and every read
scope but contact details and aggregates)."""


def test_every_root_query_field_has_a_probe() -> None:
    assert {name.split(".")[0] for name in PROBES} == set(QUERY.fields)


@pytest.fixture
async def callers(acme_shop: None, api_for: Callable[..., Any]) -> dict[str, Api]:
    made = {}
    for name, (role, scopes, customers) in CALLERS.items():
        rights: dict[str, Any] = {"scopes": scopes}
        if customers is not None:
            rights["customers"] = customers
        made[name] = await api_for(role, **rights)
    return made


async def _ask(api: Api, probe: Probe, customer: str) -> tuple[str, Any]:
    """("denied", codes) or ("answered", data)."""
    variables = {"id": customer, "name": NAMES[int(customer[1:])] if customer in ALL else customer}
    used = {k: v for k, v in variables.items() if f"${k}" in probe.document}
    response = await api.post(probe.document, used)
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("errors"):
        codes = {e["extensions"]["code"] for e in body["errors"]}
        assert codes == {"FORBIDDEN"}, body
        assert not any((body.get("data") or {}).values())
        return "denied", codes
    return "answered", body["data"]


def _names(data: Any, customer: str) -> bool:
    return f'"{customer}"' in json.dumps(data)


@pytest.mark.parametrize("field", list(PROBES))
async def test_each_key_finds_only_the_customers_of_its_scope(
    callers: dict[str, Api], field: str
) -> None:
    probe = PROBES[field]
    seen: dict[tuple[str, str], str] = {}
    expected: dict[tuple[str, str], str] = {}
    for name, (role, scopes, customers) in CALLERS.items():
        granted = scopes if scopes is not None else PRESETS[role.value]
        limited = customers is not None
        for where, customer in (("in", probe.inside), ("out", probe.outside)):
            # when the key asks about a customer in or out of its scope
            outcome, data = await _ask(callers[name], probe, customer)
            if outcome == "denied":
                seen[(name, where)] = "denied"
            elif not probe.reveals:
                seen[(name, where)] = "answered"
            else:
                seen[(name, where)] = "found" if _names(data, customer) else "absent"
            # then it is refused what its scopes do not grant; out of its customer scope, the
            # customer is nowhere in the answer
            if not probe.needs <= granted:
                expected[(name, where)] = "denied"
            elif not probe.reveals:
                expected[(name, where)] = "answered"
            else:
                expected[(name, where)] = "absent" if limited and where == "out" else "found"
            # and asked by id, it gets what an unknown id gets
            if outcome == "answered" and probe.by_id and limited and where == "out":
                _, unknown = await _ask(callers[name], probe, "nobody")
                assert data == unknown, (name, data, unknown)
    assert seen == expected


async def test_a_customer_scope_holds_on_every_path_at_once(callers: dict[str, Api]) -> None:
    # given the analyst's answers and the acme reader's to a query reaching customers every way
    query = """{
      customers(first: 100) { nodes { id socialTies { nodes { customer { id } } } } }
      searchCustomers(text: "an", first: 100) { nodes { id } }
      n: neighbourhood(id: "c03", depth: 3) {
        members { customer { id } } ties { sourceId targetId } }
      p: path(from: "c03", to: "c06") { customers { id } }
      product(id: "p1") { buyers(first: 100) { nodes { customer { id } } } }
      knows: customers(where: {knows: {country: {eq: "US"}}}, first: 100) { nodes { id } }
    }"""
    full = await callers["analyst"].data(query)
    scoped = await callers["reader acme"].data(query)
    # then the analyst sees customers outside acme, and the acme reader none of them
    mentioned = {c for c in ALL if _names(full, c)}
    assert mentioned - IN_SCOPE
    assert {c for c in ALL if _names(scoped, c)} <= IN_SCOPE
    assert {n["id"] for n in scoped["customers"]["nodes"]} == IN_SCOPE
    assert scoped["p"] is None  # c06 is outside: no path to it
    assert scoped["knows"]["nodes"] == []  # c03 knows c06 (US), who is outside


async def test_keys_reaching_every_customer_cannot_be_limited(store: GraphStore) -> None:
    for scope in (Scope.AGGREGATES, Scope.WRITE, Scope.ADMIN):
        with pytest.raises(ValueError, match=scope.value):
            await create_key(store, Role.PARTNER, "x", scopes=frozenset({scope}), customers=ACME)


# -- the attacks of issue 21 -------------------------------------------------------------------


async def test_a_partner_cannot_page_through_the_customer_base(
    acme_shop: None, api_for: Callable[..., Any]
) -> None:
    # given a partner key (the preset), paging `customers` as a client would
    partner = await api_for(Role.PARTNER)
    listed: set[str] = set()
    after = None
    for _ in range(20):
        response = (
            await partner.post(
                "query($a: String) { customers(first: 5, after: $a) { nodes { id } "
                "pageInfo { hasNextPage endCursor } } }",
                {"a": after},
            )
        ).json()
        if response.get("errors"):
            break
        page = response["data"]["customers"]
        listed |= {n["id"] for n in page["nodes"]}
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then it lists nobody: the list is refused before anything runs
    assert listed == set()
    assert response["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "customers"}
    # and searching letter by letter is refused too
    [error] = await partner.errors('{ searchCustomers(text: "an") { nodes { id } } }')
    assert error["extensions"] == {"code": "FORBIDDEN", "field": "searchCustomers"}


async def test_guessing_ids_reaches_only_the_customer_scope(callers: dict[str, Api]) -> None:
    # given an acme partner key trying every id in turn
    found = set()
    for customer in sorted(ALL):
        data = await callers["partner acme"].data(
            "query($id: ID!) { customer(id: $id) { id totalSpend } }", id=customer
        )
        if data["customer"] is not None:
            found.add(data["customer"]["id"])
    # then it reads the acme customers only
    assert found == IN_SCOPE


REBUILDS = {
    "segment sizes": "{ customers(first: 100) { nodes { id segments { id } } } }",
    "influencer order": "{ customers(first: 100) { nodes { id pagerank } } }",
    "revenue by country": "{ customers(first: 100) { nodes { country totalSpend } } }",
    "totalCount": "{ customers(first: 100) { nodes { id } } }",
    "segment sizes by id": '{ customer(id: "c00") { segments { id } segment { id } } }',
    "influencer order by id": '{ customer(id: "c00") { pagerank community } }',
}


@pytest.mark.parametrize("attack", list(REBUILDS))
async def test_a_partner_cannot_rebuild_an_aggregate_from_pages(
    acme_shop: None, api_for: Callable[..., Any], attack: str
) -> None:
    # given a partner key, denied the aggregates, asking for the per-customer data they are
    # made of (all customers, page by page, or one by one by id)
    partner = await api_for(Role.PARTNER)
    response = (await partner.post(REBUILDS[attack])).json()
    # then the request is refused whole before anything runs: no data to sum
    assert response["data"] is None
    assert {e["extensions"]["code"] for e in response["errors"]} == {"FORBIDDEN"}


async def test_per_customer_figures_of_a_limited_key_add_up_to_its_scope_only(
    callers: dict[str, Api],
) -> None:
    # given revenue by country as the analyst gets it, and as an acme reader rebuilds it
    real = {
        r["key"]: r["revenue"]
        for r in (await callers["analyst"].data("{ revenue(by: COUNTRY) { key revenue } }"))[
            "revenue"
        ]
    }
    nodes = (
        await callers["reader acme"].data(
            "{ customers(first: 100) { nodes { id country totalSpend } } }"
        )
    )["customers"]["nodes"]
    rebuilt: dict[str, float] = {}
    for node in nodes:
        rebuilt[node["country"]] = rebuilt.get(node["country"], 0.0) + node["totalSpend"]
    # then the reader's sums cover its own customers only, not the business
    assert {n["id"] for n in nodes} == IN_SCOPE
    assert rebuilt != {k: v for k, v in real.items() if v}
    assert sum(rebuilt.values()) < sum(real.values())


def test_the_readme_scope_table_is_the_one_in_the_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| (.*) \|$", readme, re.MULTILINE))
    assert rows == {scope.value: text for scope, text in SCOPES.items()}


async def test_segment_and_explicit_list_scopes_add_up(
    acme_shop: None, store: GraphStore, api_for: Callable[..., Any], admin: Api
) -> None:
    # given a segment holding c08, and a key limited to it and to an explicit list
    await store.write(
        "CREATE (s:Segment {id: 'seg-vip', name: 'vip'}) WITH s "
        "MATCH (c:Customer {id: 'c08'}) CREATE (c)-[:IN_SEGMENT]->(s)"
    )
    reader = await api_for(
        Role.PARTNER,
        scopes=broad_partner_scopes(),
        customers=CustomerScope(segments=("vip",), ids=("c10",)),
    )
    query = "{ customers(first: 100) { nodes { id } } }"

    async def listed() -> set[str]:
        return {n["id"] for n in (await reader.data(query))["customers"]["nodes"]}

    assert await listed() == {"c08", "c10"}
    # when an admin replaces the key's explicit list through the API
    [key_id] = [k.id for k in await list_keys(store) if k.role is Role.PARTNER]
    set_ids = (
        "mutation($k: String!, $ids: [ID!]!) { setKeyCustomers(keyId: $k, customerIds: $ids) }"
    )
    assert (await admin.data(set_ids, k=key_id, ids=["c11", "c09"]))["setKeyCustomers"] is True
    # then the next request sees the new list (and the segment still)
    assert await listed() == {"c08", "c09", "c11"}
    # and a partner cannot manage lists
    [error] = await reader.errors(set_ids, k=key_id, ids=["c00"])
    assert error["extensions"] == {"code": "FORBIDDEN", "field": "setKeyCustomers"}
