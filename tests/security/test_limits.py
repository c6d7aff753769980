"""Abusive requests are refused with a documented status and code before the store is touched:
bodies that are not GraphQL requests, oversized bodies, JSON and filters nested too deep, filters
too wide, page sizes out of range. (`tests/api/test_access.py` covers selection depth, alias
floods and token counts.) "Before the store": the store's round-trip counter moves by the key
look-up only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType, build_schema

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.pagination import MAX_PAGE
from crm_graph.api.schema import sdl
from crm_graph.graph import network
from crm_graph.graph.filters import MAX_CONDITIONS, MAX_DEPTH, MAX_SUBQUERIES
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from tests.conftest import Api
from tests.security.conftest import assert_safe_answer


@pytest.fixture
async def warm_admin(admin: Api) -> Api:
    await admin.data("{ __typename }")  # the key's first use is recorded: not counted below
    return admin


async def post_raw(api: Api, body: bytes, **headers: str) -> httpx.Response:
    return await api.client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json",
                 **headers},
    )  # fmt: skip


# -- bodies ------------------------------------------------------------------------------------

NOT_REQUESTS = [
    b"null", b"5", b'"{ __typename }"', b"true", b"{", b"",
    b'{"query": "{ __typename }", "variables": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"query": "query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }", '
    b'"variables": {"w": ' + b'{"knows": ' * 5000 + b"{}" + b"}" * 5000 + b"}}",
    b"\x00\x00\x00\x80", b"\x00\x80\x80",  # look like UTF-32 / UTF-16 to JSON, do not decode
]  # fmt: skip


@pytest.mark.parametrize("body", NOT_REQUESTS, ids=lambda b: repr(b[:12]))
async def test_a_body_that_is_no_graphql_request_is_400(
    store: GraphStore, warm_admin: Api, body: bytes
) -> None:
    # given a body that is not a JSON object, or nests deeper than Python parses (under 64 KiB)
    assert len(body) < 64 * 1024
    before = store.round_trips
    # when it is posted, then it is refused as a bad request and nothing but the key look-up ran
    response = await post_raw(warm_admin, body)
    assert response.status_code == 400, response.text[:300]
    assert_safe_answer(response, body.decode(errors="replace"))
    assert store.round_trips - before == 1


async def test_an_oversized_body_touches_nothing(store: GraphStore, warm_admin: Api) -> None:
    # given a body over 64 KiB, announced by Content-Length or streamed without it
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * 70_000}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = store.round_trips
    announced = await post_raw(warm_admin, body)
    after_announced = store.round_trips
    streamed = await warm_admin.client.post(
        "/graphql", content=chunks(),
        headers={"Authorization": f"Bearer {warm_admin.key}", "Content-Type": "application/json"},
    )  # fmt: skip
    # then both are 413; the announced one never reached the key look-up, the streamed one
    # went no further than it
    for response in (announced, streamed):
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert after_announced == before
    assert store.round_trips - after_announced == 1


# -- filters -----------------------------------------------------------------------------------

PAGE = "query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }"


def nested(kind: str, depth: int) -> dict[str, Any]:
    where: dict[str, Any] = {"name": {"eq": "Ann"}}
    for _ in range(depth):
        where = {kind: [where]} if kind in ("AND", "OR") else {kind: where}
    return where


@pytest.mark.parametrize("kind", ["NOT", "OR", "AND"])
async def test_a_filter_nested_too_deep_is_refused_before_the_store(
    shop: None, store: GraphStore, warm_admin: Api, kind: str
) -> None:
    # given filters nested as deep as allowed, and one level deeper
    assert (await warm_admin.data(PAGE, w=nested(kind, MAX_DEPTH)))["customers"] is not None
    before = store.round_trips
    # when the deeper one is asked for (FalkorDB's parser would take seconds, then hours, from
    # a few levels further on), then it is refused and only the key look-up ran
    [error] = await warm_admin.errors(PAGE, w=nested(kind, MAX_DEPTH + 1))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "customers.where"}
    assert f"over {MAX_DEPTH} deep" in error["message"]
    assert store.round_trips - before == 1


async def test_knows_nested_beyond_what_the_cost_allows_is_refused_before_the_store(
    shop: None, store: GraphStore, warm_admin: Api
) -> None:
    # given `knows` nested 4 deep (11,110 points of filter), and 5 and 6 deep: each level
    # searches every candidate's ties again (4 levels held the store 133 s on 100k customers;
    # within the cost, the statement timeout bounds such a filter: test_hostile.py)
    assert (await warm_admin.data(PAGE, w=nested("knows", 4)))["customers"] is not None
    for depth in (MAX_DEPTH, MAX_DEPTH + 1):
        before = store.round_trips
        # when the deeper ones are asked for, then they are refused for their cost, with it
        response = await warm_admin.post(PAGE, {"w": nested("knows", depth)})
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert error["extensions"]["cost"]["requested"] > error["extensions"]["cost"]["maximum"]
        assert "points" in error["message"]
        assert store.round_trips - before == 1  # the key look-up only


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ({"OR": [{"name": {"eq": f"n{i}"}} for i in range(MAX_CONDITIONS + 1)]}, "conditions"),
        ({"name": {"in": ["x"] * 5000}, "OR": [{"city": {"eq": "x"}}] * MAX_CONDITIONS},
         "conditions"),
        ({"OR": [{"knows": {"id": {"eq": "c00"}}}] * (MAX_SUBQUERIES + 1)}, "relationships"),
        ({"AND": [{"totalSpend": {"gt": i}} for i in range(MAX_SUBQUERIES + 1)]}, "figures"),
    ],
    ids=["comparisons", "comparisons-and-a-list", "knows", "totalSpend"],
)  # fmt: skip
async def test_a_filter_too_wide_is_refused_before_the_store(
    shop: None, store: GraphStore, warm_admin: Api, where: dict[str, Any], words: str
) -> None:
    before = store.round_trips
    [error] = await warm_admin.errors(PAGE, w=where)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "customers.where"}
    assert words in error["message"]
    assert store.round_trips - before == 1


async def test_a_filter_at_the_limits_is_answered(shop: None, warm_admin: Api) -> None:
    # given 50 conditions, 10 of them subqueries: 5 knows (each with a comparison inside),
    # 5 on total spend, and 35 comparisons of names
    knows, spend = MAX_SUBQUERIES // 2, MAX_SUBQUERIES - MAX_SUBQUERIES // 2
    names = MAX_CONDITIONS - 2 * knows - spend
    where = {
        "OR": [{"name": {"eq": f"n{i}"}} for i in range(names)]
        + [{"knows": {"country": {"eq": "FR"}}}] * knows
        + [{"totalSpend": {"gte": 30}}] * spend
    }
    # when asked for, then it is answered
    nodes = (await warm_admin.data(PAGE, w=where))["customers"]["nodes"]
    assert {n["id"] for n in nodes} == {"c00", "c01", "c04", "c08"}


# -- page sizes and ranges ---------------------------------------------------------------------

ROOT_RANGES = {  # (field, argument): (document, the largest value allowed)
    ("customers", "first"): ("{ customers(first: %d) { nodes { id } } }", MAX_PAGE),
    ("searchCustomers", "first"):
        ('{ searchCustomers(text: "ann", first: %d) { nodes { id } } }', MAX_PAGE),
    ("products", "first"): ("{ products(first: %d) { pageInfo { hasNextPage } } }", MAX_PAGE),
    ("influencers", "first"): ("{ influencers(first: %d) { id } }", MAX_PAGE),
    ("communities", "first"): ("{ communities(first: %d) { id } }", MAX_PAGE),
    ("mostAtRisk", "first"): ("{ mostAtRisk(first: %d) { id } }", MAX_PAGE),
    ("auditLog", "first"): ("{ auditLog(first: %d) { nodes { keyId } } }", MAX_PAGE),
    ("webhookDeliveries", "first"):
        ('{ webhookDeliveries(id: "wh_x", first: %d) { nodes { id } } }', MAX_PAGE),
    ("neighbourhood", "depth"):
        ('{ neighbourhood(id: "c00", depth: %d) { truncated } }', network.MAX_DEPTH),
    ("neighbourhood", "limit"):
        ('{ neighbourhood(id: "c00", limit: %d) { truncated } }', network.DEFAULT_NODE_LIMIT),
    ("path", "maxLength"):
        ('{ path(from: "c00", to: "c01", maxLength: %d) { length } }', network.MAX_PATH_LENGTH),
}  # fmt: skip
NESTED_RANGES = {
    ("Customer", "transactions"): '{ customer(id: "c00") { transactions(first: %d) { nodes { id } } } }',  # noqa: E501
    ("Customer", "interactions"): '{ customer(id: "c00") { interactions(first: %d) { nodes { id } } } }',  # noqa: E501
    ("Customer", "productsBought"):
        '{ customer(id: "c00") { productsBought(first: %d) { nodes { orders } } } }',
    ("Customer", "recommendations"):
        '{ customer(id: "c00") { recommendations(first: %d) { score } } }',
    ("CatalogProduct", "buyers"): '{ product(id: "p1") { buyers(first: %d) { nodes { orders } } } }',  # noqa: E501
    ("Community", "members"): "{ communities(first: 1) { members(first: %d) { id } } }",
    ("Customer", "socialTies"):
        '{ customer(id: "c00") { socialTies(first: %d) { nodes { type } } } }',
    ("Transaction", "lines"):
        '{ customer(id: "c00") { transactions(first: 1) { nodes { lines(first: %d) { nodes '
        '{ amount } } } } } }',
}  # fmt: skip
TOO_MUCH = [101, 1000, -1, 2**31 - 1]


def test_every_bounded_argument_is_listed() -> None:
    # every `first` in the schema, and the network's depth, limit and maxLength, is tried below
    schema = build_schema(sdl())
    firsts = {
        (name, field)
        for name, kind in schema.type_map.items()
        if isinstance(kind, GraphQLObjectType) and not name.startswith("__")
        for field, definition in kind.fields.items()
        if "first" in definition.args
    }
    assert firsts == {("Query", f) for f, a in ROOT_RANGES if a == "first"} | set(NESTED_RANGES)


@pytest.mark.parametrize(("field", "argument"), list(ROOT_RANGES))
async def test_an_out_of_range_size_is_refused_before_the_store(
    scored_shop: None, store: GraphStore, warm_admin: Api, field: str, argument: str
) -> None:
    document, largest = ROOT_RANGES[field, argument]
    assert (await warm_admin.data(document % largest))[field] is not None
    for value in (largest + 1, -1, 2**31 - 1):
        before = store.round_trips
        [error] = await warm_admin.errors(document % value)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == f"{field}.{argument}"
        assert store.round_trips - before == 1


@pytest.mark.parametrize(("kind", "field"), list(NESTED_RANGES))
async def test_an_out_of_range_page_of_a_nested_list_is_refused(
    scored_shop: None, warm_admin: Api, kind: str, field: str
) -> None:
    for value in TOO_MUCH:
        [error] = await warm_admin.errors(NESTED_RANGES[kind, field] % value)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": f"{field}.first",
                                       "max": 100}  # fmt: skip


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, 10**30])
async def test_a_size_beyond_a_graphql_int_is_a_validation_error(
    store: GraphStore, warm_admin: Api, value: int
) -> None:
    before = store.round_trips
    [literal] = await warm_admin.errors(f"{{ customers(first: {value}) {{ nodes {{ id }} }} }}")
    [variable] = await warm_admin.errors(
        "query($n: Int!) { customers(first: $n) { nodes { id } } }", n=value
    )
    assert literal["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert variable["extensions"] == {"code": "BAD_USER_INPUT"}
    assert store.round_trips - before == 2


# -- request errors in production --------------------------------------------------------------

REQUEST_ERRORS = [
    ("{ customers { nodes { id } ", "GRAPHQL_PARSE_FAILED", "Syntax Error"),
    ("{ nope }", "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nope'"),
    ('{ customer(id: "c00") { ' + "socialTies { nodes { customer { " * 6 + "id" + " } } }" * 6 + " } }",  # noqa: E501
     "GRAPHQL_VALIDATION_FAILED", "exceeds maximum operation depth"),
    ("{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }",
     "GRAPHQL_VALIDATION_FAILED", "aliases"),
    ("{ customers { nodes { " + "id " * 3000 + "} } }", "GRAPHQL_PARSE_FAILED", "tokens"),
    ("query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }", "BAD_USER_INPUT",
     "Variable '$w'"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "code", "words"), REQUEST_ERRORS, ids=lambda v: str(v)[:20])
async def test_request_errors_keep_their_message_and_code_in_production(
    store: GraphStore, query: str, code: str, words: str
) -> None:
    # given the production app (unexpected errors masked)
    app = create_app(StoreSettings(), store=store, production=True, rate_limiter=None)
    _, key = await create_key(store, Role.ANALYST, "prod")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # when a request GraphQL itself refuses is sent
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": {"w": {"name": {"eq": 5}}}},
            headers={"Authorization": f"Bearer {key}"},
        )
    # then the caller reads what is wrong, with a code: it is not masked as unexpected
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": code}
    assert words in error["message"]


async def test_a_filter_variable_nested_hundreds_deep_is_refused_not_a_crash(
    store: GraphStore, warm_admin: Api
) -> None:
    # given a NOT filter nested 400 deep in a variable (JSON that Python still parses)
    response = await warm_admin.post(PAGE, {"w": nested("NOT", 400)})
    # then it is refused as bad input or bad variables, never a 500 or an unexpected error
    assert response.status_code in (200, 400), response.text[:300]
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    assert codes <= {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED", "QUERY_TOO_COSTLY"}, codes
