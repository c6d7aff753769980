"""Who may do what, generated from the schema: every root query and mutation field, for every
kind of caller, against the policy table below (a field the table does not classify fails the
test, so a new field cannot ship without a decision). Then what partners see of customers:
every field of `Customer`, on every path that reaches one; keys: revocation at once, no
plaintext at rest, constant-time comparison.

Policy (README, "Errors, roles and limits"): admin reads and writes everything; analyst reads
everything and writes nothing but saved views (named filters, no customer data); partner reads
without personal data (email, phone masked; attributes hidden; no filtering or searching on
them), only customers whose id it knows (no `list` scope) and no social graph (no `ties`
scope), and without aggregates over all customers or saved views; the tests of masking use a
partner key given every read scope but contact details and aggregates;
no key, a malformed, unknown or revoked key: HTTP 401 and nothing executed.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLObjectType, get_named_type

from crm_graph.api.auth import keys as api_keys
from crm_graph.api.auth.keys import ID_LENGTH, KEY_PREFIX, create_key, revoke_key
from crm_graph.api.auth.principal import Role
from crm_graph.graph.store import GraphStore
from tests.conftest import Api
from tests.helpers import broad_partner_scopes, secret_of
from tests.security.conftest import graph_state
from tests.security.documents import (
    MUTATION,
    QUERY,
    SCHEMA,
    minimal_document,
    minimal_variables,
)

READ, AGGREGATE, WRITE = "read", "aggregate over all customers", "write"
LIST, TIES = "find customers without their id", "walk the social graph"
ADMINISTER = "administer (audit log, exports, keys, webhooks)"
VIEWS = "saved views: analysts' named filters, no customer data"
POLICY = {
    "query": {
        "customer": READ, "customers": LIST, "searchCustomers": LIST, "neighbourhood": TIES,
        "path": TIES, "products": READ, "product": READ, "categories": READ,
        "revenue": AGGREGATE, "segments": AGGREGATE, "influencers": AGGREGATE,
        "communities": AGGREGATE, "modelCards": AGGREGATE, "rateLimit": READ,
        "auditLog": ADMINISTER, "customerExport": ADMINISTER,
        "churnRiskDistribution": AGGREGATE, "mostAtRisk": AGGREGATE, "segmentMap": AGGREGATE,
        "savedViews": VIEWS, "savedView": VIEWS, "webhooks": ADMINISTER,
        "webhookDeliveries": ADMINISTER,
    },
    "mutation": {
        "upsertCustomers": WRITE, "recordTransaction": WRITE, "recordInteraction": WRITE,
        "linkCustomers": WRITE, "mergeCustomers": WRITE, "eraseCustomer": WRITE,
        "setKeyCustomers": ADMINISTER, "saveView": VIEWS, "deleteView": VIEWS,
        "addWebhook": ADMINISTER, "removeWebhook": ADMINISTER, "replayWebhook": ADMINISTER,
    },
}  # fmt: skip
ALLOWED = {
    READ: {Role.ADMIN, Role.ANALYST, Role.PARTNER},
    LIST: {Role.ADMIN, Role.ANALYST},
    TIES: {Role.ADMIN, Role.ANALYST},
    AGGREGATE: {Role.ADMIN, Role.ANALYST},
    WRITE: {Role.ADMIN},
    ADMINISTER: {Role.ADMIN},
    VIEWS: {Role.ADMIN, Role.ANALYST},
}
NO_ACCESS = ("no key", "malformed key", "unknown key", "revoked key")


def test_the_policy_classifies_every_root_field() -> None:
    assert set(QUERY.fields) == set(POLICY["query"])
    assert set(MUTATION.fields) == set(POLICY["mutation"])


def _root_fields() -> Iterator[Any]:
    for operation, root in (("query", QUERY), ("mutation", MUTATION)):
        for name in root.fields:
            yield pytest.param(operation, name, id=f"{operation}-{name}")


@pytest.fixture
async def credentials(store: GraphStore, api_for: Callable[[Role], Any]) -> dict[Any, Api]:
    """A client for each role, and for each way of having no access."""
    callers: dict[Any, Api] = {role: await api_for(role) for role in Role}
    admin = callers[Role.ADMIN]
    revoked, revoked_key = await create_key(store, Role.ADMIN, "revoked")
    await revoke_key(store, revoked.id)
    callers["no key"] = Api(admin.client, None)
    callers["malformed key"] = Api(admin.client, "crm_nope")
    callers["unknown key"] = Api(admin.client, "crm_AAAAAAAAAAAA_" + "A" * 43)
    callers["revoked key"] = Api(admin.client, revoked_key)
    for api in callers.values():  # first uses are recorded once: not counted below
        await api.post("{ __typename }")
    return callers


async def _outcome(api: Api, document: str, variables: dict[str, Any], name: str) -> str:
    response = await api.post(document, variables)
    body = response.json()
    if response.status_code == 401:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
        assert "data" not in body
        return "401"
    assert response.status_code == 200, response.text
    errors = body.get("errors") or []
    if any(e["extensions"]["code"] == "FORBIDDEN" for e in errors):
        assert [e["extensions"] for e in errors] == [{"code": "FORBIDDEN", "field": name}]
        assert not any((body["data"] or {}).values())
        return "denied"
    assert not errors, errors
    return "allowed"


@pytest.mark.parametrize(("operation", "name"), list(_root_fields()))
async def test_each_caller_gets_what_the_policy_says(
    shop: None, store: GraphStore, credentials: dict[Any, Api], operation: str, name: str
) -> None:
    # given a minimal valid document for the field
    field = (QUERY if operation == "query" else MUTATION).fields[name]
    document = minimal_document(operation, name, field)
    variables = minimal_variables(field)
    policy = POLICY[operation][name]
    before = await graph_state(store)
    # when every caller without the right sends it, then nothing runs: 401 after the key look-up
    # alone, or FORBIDDEN before the resolver (the graph is unchanged, even by mutations)
    seen: dict[Any, str] = {}
    for caller in [*NO_ACCESS, *(r for r in Role if r not in ALLOWED[policy])]:
        round_trips = store.round_trips
        seen[caller] = await _outcome(credentials[caller], document, variables, name)
        assert store.round_trips - round_trips <= 1, caller
    assert await graph_state(store) == before
    # and every caller with the right gets an answer without errors
    for caller in sorted(ALLOWED[policy]):
        seen[caller] = await _outcome(credentials[caller], document, variables, name)
    expected = {caller: "401" for caller in NO_ACCESS}
    expected |= {role: "allowed" if role in ALLOWED[policy] else "denied" for role in Role}
    assert seen == expected


@pytest.mark.parametrize("role", list(Role))
async def test_totals_over_all_customers_are_not_for_partners(
    shop: None, api_for: Callable[..., Any], role: Role
) -> None:
    # a partner key allowed to list customers (the partner preset cannot)
    api = await api_for(role, scopes=broad_partner_scopes() if role is Role.PARTNER else None)
    response = (await api.post("{ customers(first: 1) { totalCount nodes { id } } }")).json()
    if role is Role.PARTNER:
        [error] = response["errors"]
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "totalCount"}
    else:
        assert response["data"]["customers"]["totalCount"] == 12


# -- what partners see of a customer -----------------------------------------------------------

CUSTOMER_FIELDS = {
    "email": "masked", "phone": "masked", "attributes": "hidden",
    "id": "shown", "name": "shown", "city": "shown", "country": "shown", "signupAt": "shown",
    "totalSpend": "shown", "orderCount": "shown", "firstPurchaseAt": "shown",
    "lastPurchaseAt": "shown", "transactions": "shown", "interactions": "shown",
    "productsBought": "shown", "socialTies": "shown", "segments": "shown", "rfm": "shown",
    "clv": "shown", "churnRisk": "shown", "segment": "shown", "demand": "shown",
    "recommendations": "shown", "pagerank": "shown", "community": "shown",
}  # fmt: skip
"""Each field of Customer: personal data masked or hidden from partners, or shown to all."""

PROFILE = "id name email phone attributes city country pagerank community"
PATHS_TO_CUSTOMERS = {
    ("Query", "customer"): f'customer(id: "c00") {{ {PROFILE} }}',
    ("CustomerSearchConnection", "nodes"):
        f'searchCustomers(text: "an", first: 50) {{ nodes {{ {PROFILE} }} }}',
    ("CustomerConnection", "nodes"): f"customers(first: 50) {{ nodes {{ {PROFILE} }} }}",
    ("CustomerEdge", "node"): f"c2: customers(first: 50) {{ edges {{ node {{ {PROFILE} }} }} }}",
    ("SocialTie", "customer"):
        f'c3: customer(id: "c03") {{ socialTies {{ nodes {{ customer {{ {PROFILE} }} }} }} }}',
    ("Neighbourhood", "center"): f'neighbourhood(id: "c03", depth: 2) {{ center {{ {PROFILE} }} '
                                 f"members {{ customer {{ {PROFILE} }} }} }}",
    ("NeighbourhoodMember", "customer"): None,  # in the line above
    ("CustomerPath", "customers"): f'path(from: "c00", to: "c01") {{ customers {{ {PROFILE} }} }}',
    ("Buyer", "customer"): f'product(id: "p2") {{ buyers {{ nodes {{ customer {{ {PROFILE} }} }} }} }}',  # noqa: E501
    # aggregates over all customers: partners are refused them (test above), analysts see them
    ("Query", "influencers"): None,
    ("Query", "mostAtRisk"): None,
    ("Community", "members"): None,
    # mutations: admins only
    ("UpsertCustomersSuccess", "customers"): None,
    ("MergeCustomersSuccess", "result"): None,
    ("MergeSource", "customer"): None,
    # over a websocket only, masked the same way: tests/api/test_subscriptions.py (partner)
    ("Subscription", "customerChanged"): None,
}  # fmt: skip
"""Every (type, field) whose value is a customer or a list of them, and a partner's query."""


def test_every_customer_field_and_every_path_to_a_customer_is_classified() -> None:
    customer = SCHEMA.type_map["Customer"]
    assert isinstance(customer, GraphQLObjectType)
    assert set(customer.fields) == set(CUSTOMER_FIELDS)
    paths = {
        (type_name, field_name)
        for type_name, kind in SCHEMA.type_map.items()
        if isinstance(kind, GraphQLObjectType) and not type_name.startswith("__")
        for field_name, field in kind.fields.items()
        if get_named_type(field.type) is customer
    }
    assert paths == set(PATHS_TO_CUSTOMERS)


def _customers(value: Any) -> Iterator[dict[str, Any]]:
    """Every customer object in an answer (those with an email key)."""
    if isinstance(value, dict):
        if "email" in value and "id" in value:
            yield value
        for item in value.values():
            yield from _customers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _customers(item)


EMAIL_MASK = re.compile(r".•••@[^@]+")
PHONE_MASK = re.compile(r"\+\d\d•+\d\d")


async def test_partners_see_every_customer_masked_on_every_path(
    scored_shop: None, api_for: Callable[[Role], Any]
) -> None:
    # given a query reaching customers by every path a partner may use
    query = "{ " + " ".join(q for q in PATHS_TO_CUSTOMERS.values() if q) + " }"
    analyst = await api_for(Role.ANALYST)
    partner = await api_for(Role.PARTNER, scopes=broad_partner_scopes())
    # when an analyst and a partner send it
    full = {c["id"]: c for c in _customers(await analyst.data(query))}
    seen = list(_customers(await partner.data(query)))
    # then the partner sees every customer the analyst does, but not their personal data
    assert {c["id"] for c in seen} == set(full) and len(full) == 12
    for customer in seen:
        real = full[customer["id"]]
        assert real["email"] and real["phone"] and real["attributes"]["loyalty"] == "gold"
        assert EMAIL_MASK.fullmatch(customer["email"]) and customer["email"] != real["email"]
        assert PHONE_MASK.fullmatch(customer["phone"]) and customer["phone"] != real["phone"]
        assert customer["attributes"] is None
        assert {k: v for k, v in customer.items() if CUSTOMER_FIELDS[k] == "shown"} == {
            k: v for k, v in real.items() if CUSTOMER_FIELDS[k] == "shown"
        }


@pytest.mark.parametrize(
    "where",
    [
        {"email": {"eq": "ann0@x.org"}},
        {"email": {"startsWith": "a"}},
        {"phone": {"contains": "0794600"}},
        {"phone": {"isNull": False}},
        {"OR": [{"name": {"eq": "Ann"}}, {"email": {"contains": "@x"}}]},
        {"NOT": {"phone": {"in": ["+442079460000"]}}},
        {"knows": {"email": {"eq": "bob1@x.org"}}},
    ],
)
async def test_partners_cannot_filter_on_personal_data(
    shop: None, store: GraphStore, api_for: Callable[[Role], Any], where: dict[str, Any]
) -> None:
    # given a filter on email or phone (it would reveal them a character at a time)
    query = "query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }"
    partner = await api_for(Role.PARTNER, scopes=broad_partner_scopes())
    analyst = await api_for(Role.ANALYST)
    await partner.data("{ __typename }")
    before = store.round_trips
    # when a partner sends it, then it is refused before the store
    [error] = await partner.errors(query, w=where)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["field"] in ("customers.where.email", "customers.where.phone")
    assert store.round_trips - before == 1
    # while an analyst gets an answer
    assert (await analyst.data(query, w=where))["customers"]["nodes"] is not None


@pytest.mark.parametrize(
    ("text", "analyst_finds", "partner_finds"),
    [
        ("ann0@x", {"c00"}, set()),
        ("@x.org", {f"c{i:02d}" for i in range(12)}, set()),
        ("2079460003", {"c03"}, set()),
        ("aNn", {"c00", "c02", "c07"}, {"c00", "c02", "c07"}),
    ],
)
async def test_partners_search_names_only(
    shop: None, api_for: Callable[[Role], Any], text: str, analyst_finds: set[str],
    partner_finds: set[str],
) -> None:  # fmt: skip
    # given text found in emails or phones (a partner could read them out a character at a time),
    # or in names
    query = "query($t: String!) { searchCustomers(text: $t, first: 50) { nodes { id } } }"
    partner = await api_for(Role.PARTNER, scopes=broad_partner_scopes())
    analyst = await api_for(Role.ANALYST)
    # when an analyst and a partner search it
    by_analyst = {c["id"] for c in (await analyst.data(query, t=text))["searchCustomers"]["nodes"]}
    by_partner = {c["id"] for c in (await partner.data(query, t=text))["searchCustomers"]["nodes"]}
    # then the analyst finds customers by name, email or phone; the partner by name only
    assert by_analyst == analyst_finds
    assert by_partner == partner_finds


# -- keys --------------------------------------------------------------------------------------


async def test_a_revoked_key_stops_working_at_once(
    shop: None, store: GraphStore, api_for: Callable[[Role], Any]
) -> None:
    # given a partner key in use through the app
    partner = await api_for(Role.PARTNER)
    assert (await partner.data('{ customer(id: "c00") { id } }'))["customer"]["id"] == "c00"
    [info] = [k for k in await api_keys.list_keys(store) if k.role is Role.PARTNER]
    # when it is revoked
    assert await revoke_key(store, info.id)
    before = store.round_trips
    # then the very next request is refused, and only the key look-up ran
    response = await partner.post('{ customer(id: "c00") { id } }')
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert store.round_trips - before == 1


async def test_no_key_is_kept_in_plaintext_anywhere_in_the_graph(
    shop: None, store: GraphStore, api_for: Callable[[Role], Any]
) -> None:
    # given keys of every role, used through the app (their use is recorded on their node)
    keys = []
    for role in Role:
        api = await api_for(role)
        await api.data("{ __typename }")
        assert api.key is not None
        keys.append(api.key)
    # when every property of every node and relationship is read
    rows = await store.read("MATCH (n) RETURN properties(n) AS p")
    rows += await store.read("MATCH ()-[r]->() RETURN properties(r) AS p")
    stored = repr([row["p"] for row in rows])
    # then no key, and no key's secret, is there; the key nodes hold SHA-256 digests
    for key in keys:
        secret = secret_of(key)
        assert key not in stored and secret not in stored
    hashes = [r["h"] for r in await store.read("MATCH (k:ApiKey) RETURN k.hash AS h")]
    assert len(hashes) == 3 and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes)


@pytest.mark.parametrize(
    "secret", ["A" * 43, "_" + "A" * 42, "A" * 20 + "__" + "A" * 21, "A" * 42 + "_"]
)
def test_the_secret_is_everything_after_the_id_even_with_underscores(secret: str) -> None:
    # given a key whose secret holds underscores, as token_urlsafe can draw
    key = f"{KEY_PREFIX}{'k' * ID_LENGTH}_{secret}"
    # then the tests look for the whole secret, not its last piece (which may be empty)
    assert secret_of(key) == secret


def test_secrets_are_compared_in_constant_time() -> None:
    # the digest check uses hmac.compare_digest ...
    source = inspect.getsource(api_keys._secret_matches)
    assert "hmac.compare_digest(" in source
    # ... and no code of api/auth compares anything secret with == or !=
    for path in sorted(Path(api_keys.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
            ):
                text = ast.unparse(node).lower()
                assert not any(w in text for w in ("secret", "hash", "digest", "key ==")), (
                    f"{path.name}:{node.lineno}: {text}"
                )
