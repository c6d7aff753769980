"""Saved views: a `customers` filter saved under a name, read back and run as it was saved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crm_graph.api.auth.principal import Role
from crm_graph.graph.store import GraphStore
from tests.conftest import Api

SAVE = """
mutation($input: SaveViewInput!) {
  saveView(input: $input) {
    __typename
    ... on SaveViewSuccess { view { name filter orderBy description createdBy updatedBy
                                    createdAt updatedAt } }
    ... on SaveViewError { code message field problems { field message } }
  }
}
"""
VIEW = "query($name: String!) { savedView(name: $name) { name filter orderBy createdBy } }"
VIEWS = "{ savedViews { name } }"
DELETE = """
mutation($name: String!) {
  deleteView(name: $name) {
    __typename ... on DeleteViewSuccess { name } ... on DeleteViewError { code field message }
  }
}
"""
CUSTOMERS = """
query($where: CustomerFilter, $orderBy: CustomerOrder) {
  customers(where: $where, orderBy: $orderBy, first: 50) { nodes { id } }
}
"""

FILTER = {
    "OR": [{"country": {"eq": "GB"}}, {"signupAt": {"gte": "2023-01-03T00:00:00+00:00"}}],
    "totalSpend": {"gte": 10.0},
}


@pytest.mark.usefixtures("shop")
async def test_a_saved_view_gives_back_the_filter_that_selects_the_same_customers(
    api_for: Any,
) -> None:
    # given an analyst who saves a filter with an order
    analyst: Api = await api_for(Role.ANALYST)
    order = {"field": "TOTAL_SPEND", "direction": "DESC"}
    saved = await analyst.data(
        SAVE, input={"name": "big GB", "filter": FILTER, "orderBy": order, "description": "x"}
    )
    view = saved["saveView"]["view"]
    assert view["name"] == "big GB" and view["createdBy"] == "test analyst"
    assert view["createdAt"] and view["createdAt"] == view["updatedAt"]
    # when another key reads it back by name
    admin: Api = await api_for(Role.ADMIN)
    found = (await admin.data(VIEW, name="big GB"))["savedView"]
    # then its filter and order, sent as they are, select what the original filter selects
    assert found["filter"] == FILTER and found["orderBy"] == order
    direct = await admin.data(CUSTOMERS, where=FILTER, orderBy=order)
    again = await admin.data(CUSTOMERS, where=found["filter"], orderBy=found["orderBy"])
    assert again == direct
    assert [c["id"] for c in direct["customers"]["nodes"]] == ["c08", "c04", "c11", "c02", "c00"]


@pytest.mark.usefixtures("shop")
async def test_saving_under_an_existing_name_replaces_the_filter_and_keeps_the_author(
    api_for: Any,
) -> None:
    analyst: Api = await api_for(Role.ANALYST)
    admin: Api = await api_for(Role.ADMIN)
    await analyst.data(SAVE, input={"name": "v", "filter": {"country": {"eq": "GB"}}})
    replaced = await admin.data(SAVE, input={"name": "v", "filter": {"country": {"eq": "FR"}}})
    view = replaced["saveView"]["view"]
    assert view["filter"] == {"country": {"eq": "FR"}}
    assert (view["createdBy"], view["updatedBy"]) == ("test analyst", "test admin")
    assert (await admin.data(VIEWS))["savedViews"] == [{"name": "v"}]


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"name": "", "filter": {}}, "input.name"),
        ({"name": " padded", "filter": {}}, "input.name"),
        ({"name": "x" * 81, "filter": {}}, "input.name"),
        ({"name": "ok", "filter": {}, "description": "d" * 501}, "input.description"),
        ({"name": "ok", "filter": {"id": {"in": []}, "knows": {"knows": {"knows": {
            "knows": {"knows": {"knows": {"knows": {"knows": {}}}}}}}}}}, "input.filter"),
    ],
)  # fmt: skip
async def test_a_view_that_cannot_be_saved_is_refused_naming_the_field_and_nothing_is_stored(
    store: GraphStore, admin: Api, input: dict[str, Any], field: str
) -> None:
    answer = (await admin.data(SAVE, input=input))["saveView"]
    assert answer["__typename"] == "SaveViewError" and answer["code"] == "INVALID"
    assert answer["field"] == field, answer
    assert await store.read("MATCH (v:SavedView) RETURN count(v) AS n") == [{"n": 0}]


@pytest.mark.usefixtures("shop")
async def test_a_filter_that_is_no_customer_filter_is_refused_by_the_schema(admin: Api) -> None:
    errors = await admin.errors(SAVE, input={"name": "v", "filter": {"colour": {"eq": "red"}}})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "colour" in errors[0]["message"]


@pytest.mark.usefixtures("shop")
async def test_deleting_a_view_removes_it_and_a_missing_one_is_not_found(admin: Api) -> None:
    await admin.data(SAVE, input={"name": "gone", "filter": {"country": {"eq": "GB"}}})
    assert (await admin.data(DELETE, name="gone"))["deleteView"] == {
        "__typename": "DeleteViewSuccess",
        "name": "gone",
    }
    assert (await admin.data(VIEW, name="gone"))["savedView"] is None
    missing = (await admin.data(DELETE, name="gone"))["deleteView"]
    assert (missing["__typename"], missing["code"], missing["field"]) == (
        "DeleteViewError",
        "NOT_FOUND",
        "name",
    )


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize("document", [SAVE, DELETE])
async def test_partner_keys_cannot_save_or_delete_views(api_for: Any, document: str) -> None:
    partner: Api = await api_for(Role.PARTNER)
    variables = {"input": {"name": "v", "filter": {}}} if document is SAVE else {"name": "v"}
    response = await partner.post(document, variables)
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["field"] in ("saveView", "deleteView")
    assert "saved views" in error["message"] and "aggregate" not in error["message"]


@pytest.mark.usefixtures("shop")
async def test_concurrent_saves_under_one_name_make_one_view(
    store: GraphStore, api_for: Any
) -> None:
    # given six analysts saving a view of the same name at once, each with their own filter
    clients: list[Api] = [await api_for(Role.ANALYST) for _ in range(6)]
    countries = ["GB", "FR", "DE", "US", "GB", "FR"]
    answers = await asyncio.gather(*(
        api.data(SAVE, input={"name": "shared", "filter": {"country": {"eq": country}}})
        for api, country in zip(clients, countries, strict=True)
    ))  # fmt: skip
    # then every save succeeded and one view remains, holding one of the filters
    assert {a["saveView"]["__typename"] for a in answers} == {"SaveViewSuccess"}
    rows = await store.read("MATCH (v:SavedView {name: 'shared'}) RETURN v.filter AS f")
    assert len(rows) == 1
    assert rows[0]["f"] in {f'{{"country":{{"eq":"{c}"}}}}' for c in countries}
