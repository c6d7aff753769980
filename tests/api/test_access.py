"""Each role's allowed and denied paths, and the limits that protect the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from crm_graph.api.auth.principal import Role
from crm_graph.graph.store import GraphStore
from tests.conftest import Api

PROFILE = '{ customer(id: "c00") { id name email phone attributes } }'


async def test_partners_see_masked_personal_data(
    shop: None, api_for: Callable[[Role], Any]
) -> None:
    partner = await api_for(Role.PARTNER)
    customer = (await partner.data(PROFILE))["customer"]
    assert customer["name"] == "Ann"
    assert customer["email"] == "a•••@x.org"
    assert customer["phone"] == "+44••••••••00"
    assert customer["attributes"] is None
    for role in (Role.ANALYST, Role.ADMIN):
        seen = (await (await api_for(role)).data(PROFILE))["customer"]
        assert seen["email"] == "ann0@x.org" and seen["phone"] == "+442079460000"


@pytest.mark.parametrize(
    "query",
    ["{ revenue(by: MONTH) { key } }", "{ segments { id } }", "{ customers { totalCount } }"],
)
async def test_partners_get_no_aggregates_over_all_customers(
    shop: None, api_for: Callable[[Role], Any], query: str
) -> None:
    partner = await api_for(Role.PARTNER)
    errors = await partner.errors(query)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert errors[0]["extensions"]["field"] in query
    analyst = await api_for(Role.ANALYST)
    assert await analyst.data(query) is not None


async def test_no_key_or_a_bad_key_is_401_and_nothing_runs(store: GraphStore, admin: Api) -> None:
    before = store.round_trips
    response = await admin.post("{ customers { totalCount } }", key="crm_nope_nope")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    no_key = await admin.client.post("/graphql", json={"query": "{ __typename }"})
    assert no_key.status_code == 401
    assert store.round_trips - before <= 1  # at most the key look-up, nothing else


DEEP = (
    '{ customer(id: "c00") { '
    + "socialTies { nodes { customer { " * 6
    + "id"
    + " } } }" * 6
    + " } }"
)
ALIASES = "{ " + " ".join(f'a{i}: customer(id: "c00") {{ id }}' for i in range(40)) + " }"
TOKENS = '{ customer(id: "c00") { ' + "id " * 3000 + "} }"


@pytest.mark.parametrize(
    ("query", "words"),
    [(DEEP, "exceeds maximum operation depth"), (ALIASES, "aliases"), (TOKENS, "token")],
)
async def test_abusive_documents_are_refused_before_the_store(
    shop: None, store: GraphStore, admin: Api, query: str, words: str
) -> None:
    await admin.data("{ __typename }")  # the key's first use is recorded: not counted below
    before = store.round_trips
    errors = await admin.errors(query)
    assert words in errors[0]["message"].lower()
    assert store.round_trips - before == 1  # the key look-up only


async def test_an_oversized_body_is_413(admin: Api) -> None:
    response = await admin.post("{ __typename }", {"pad": "x" * 100_000})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
