"""The query cost model (`api.cost`): the figures Strawberry's depth and alias rules give, in
work linear in the document (fragments memoised), and the cost of lists, filters and
neighbourhoods; the cost in every answer, the key's points in headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse, validate
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from crm_graph.api import cost
from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.auth.ratelimit import PointsLimiter
from crm_graph.api.schema import MAX_COST, schema
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore

GRAPHQL = schema._schema

DOCUMENTS = [
    '{ customer(id: "a") { id socialTies { nodes { customer { id } } } } }',
    '{ a: customer(id: "a") { b: id ...F } } fragment F on Customer { c: name socialTies '
    "{ nodes { d: type customer { ...G } } } } fragment G on Customer { e: id f: name }",
    '{ customer(id: "a") { ...F ...F ... on Customer { x: id } } } '
    "fragment F on Customer { y: id transactions { nodes { lines { nodes { product { z: id } } } } } }",  # noqa: E501
    '{ __schema { types { name } } customer(id: "a") { __typename } }',
]


def _strawberry_figures(document: str) -> tuple[int, int]:
    """(depth, aliases) as Strawberry's rules find them: the smallest limit they accept."""
    parsed = parse(document)
    depth = next(d for d in range(20) if not validate(GRAPHQL, parsed, [depth_rule(d, None, None)]))
    aliases = next(a for a in range(50) if not validate(GRAPHQL, parsed, [aliases_rule(a)]))
    return depth, aliases


@pytest.mark.parametrize("document", DOCUMENTS)
def test_depth_and_aliases_are_the_figures_strawberrys_rules_give(document: str) -> None:
    analysis = cost.analyse(GRAPHQL, document, parse(document), None)
    assert (analysis.figures.depth, analysis.figures.aliases) == _strawberry_figures(document)


def fan_out(lines: int) -> str:
    fragments = [f"fragment F{i} on Customer {{ a{i}: id ...F{i + 1} ...F{i + 1} }}"
                 for i in range(lines)]  # fmt: skip
    fragments.append(
        f"fragment F{lines} on Customer {{ socialTies {{ nodes {{ customer {{ id }} }} }} }}"
    )
    return '{ customer(id: "a") { ...F0 } }\n' + "\n".join(fragments)


def test_fragments_are_costed_once_each_whatever_the_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    # given 19 (then 30) fragments each spreading the next twice: 2^19 (2^30) paths
    visits = 0
    original = cost._Cost.selection_set

    def counted(self: Any, *args: Any) -> int:
        nonlocal visits
        visits += 1
        return original(self, *args)

    monkeypatch.setattr(cost._Cost, "selection_set", counted)
    for lines in (19, 30):
        visits = 0
        document = fan_out(lines)
        analysis = cost.analyse(GRAPHQL, document, parse(document), None)
        # then each selection set is visited about once, and the figures count every path
        assert visits <= 4 * lines
        assert analysis.figures.aliases == 2**lines - 1
        assert analysis.fixed_cost == 1 + 2**lines * (1 + 20 * 2)  # a tie page of 20


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ('{ customer(id: "a") { id name } }', 1),
        ('{ customer(id: "a") { transactions(first: 5) { nodes { id } } } }', 1 + 1 + 5),
        (
            '{ customer(id: "a") { transactions(first: 5) { nodes { lines { nodes { amount } } } } } }',  # noqa: E501
            1 + 1 + 5 * (1 + 1 + 20),  # each order's page of lines: 20 by default
        ),
        (
            "{ customers(first: 30) { edges { node { id } } pageInfo { hasNextPage } } }",
            1 + 30 * (1 + 1) + 1,
        ),
        (
            '{ neighbourhood(id: "a", depth: 2, limit: 40) { members { customer { id } } } }',
            2 * 40 + 1 + 40 * 2,
        ),
        (
            '{ customers(where: {knows: {knows: {country: {eq: "x"}}}}, first: 1) '
            "{ nodes { id } } }",
            10 + 100 + 1 + 1 * 1,
        ),
        ("{ customers(first: 1000) { nodes { id } } }", 1 + 100),  # the field refuses 1000
    ],
)
def test_what_documents_cost(document: str, expected: int) -> None:
    assert cost.analyse(GRAPHQL, document, parse(document), None).fixed_cost == expected


def test_a_cost_reading_variables_is_worked_out_with_them() -> None:
    document = "query($n: Int!) { customers(first: $n) { nodes { id } } }"
    analysis = cost.analyse(GRAPHQL, document, parse(document), None)
    assert analysis.fixed_cost is None
    assert cost.cost_of(GRAPHQL, parse(document), analysis, {"n": 7}) == 1 + 7


@pytest.fixture
async def limited(store: GraphStore) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = create_app(StoreSettings(), store=store, rate_limiter=None,
                     points_limiter=PointsLimiter(points=250, window_seconds=3600))  # fmt: skip
    _, key = await create_key(store, Role.ADMIN, "points")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client, key


async def test_requests_spend_their_cost_and_are_refused_past_the_points(
    limited: tuple[httpx.AsyncClient, str],
) -> None:
    client, key = limited
    document = '{ customer(id: "a") { id socialTies(first: 99) { nodes { type } } } }'  # 101 points

    async def post() -> httpx.Response:
        return await client.post("/graphql", json={"query": document},
                                 headers={"Authorization": f"Bearer {key}"})  # fmt: skip

    first, second, third = [await post() for _ in range(3)]
    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    assert first.json()["extensions"]["cost"] == {
        "requested": 101, "maximum": MAX_COST, "limit": 250, "remaining": 149,
        "resetAt": first.json()["extensions"]["cost"]["resetAt"],
    }  # fmt: skip
    remaining = [r.headers["x-ratelimit-remaining"] for r in (first, second, third)]
    assert remaining == ["149", "48", "48"]
    assert third.headers["x-ratelimit-limit"] == "250" and int(third.headers["retry-after"]) >= 1
    [error] = third.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED" and "101" in error["message"]


async def test_the_rate_limit_field_says_what_the_headers_say(
    limited: tuple[httpx.AsyncClient, str],
) -> None:
    client, key = limited
    document = "{ rateLimit { cost maximumCost limit remaining resetAt } }"
    response = await client.post("/graphql", json={"query": document},
                                 headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    found = response.json()["data"]["rateLimit"]
    assert found["cost"] == 1 and found["maximumCost"] == MAX_COST and found["limit"] == 250
    assert found["remaining"] == int(response.headers["x-ratelimit-remaining"]) == 249
    assert found["resetAt"].endswith("Z") or "+00:00" in found["resetAt"]


def test_a_cost_that_reads_no_variable_is_worked_out_once() -> None:
    by_id = "query($id: ID!) { customer(id: $id) { transactions(first: 5) { nodes { id } } } }"
    assert cost.analyse(GRAPHQL, by_id, parse(by_id), None).fixed_cost == 1 + 1 + 5
    nested = "query($k: CustomerFilter) { customers(where: {knows: $k}) { nodes { id } } }"
    analysis = cost.analyse(GRAPHQL, nested, parse(nested), None)
    assert analysis.fixed_cost is None  # the filter inside the variable decides
    deep = {"knows": {"knows": {"name": {"eq": "x"}}}}
    assert cost.cost_of(GRAPHQL, parse(nested), analysis, {"k": deep}) == 10 + 100 + 1000 + 1 + 20
