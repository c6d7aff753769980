"""Finding customers: filters, sorting, pagination without gaps or duplicates, search, and a
bounded number of store round trips whatever the page size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.conftest import Api

PAGE = """
query Page($where: CustomerFilter, $order: CustomerOrder, $first: Int!, $after: String) {
  customers(where: $where, orderBy: $order, first: $first, after: $after) {
    edges { cursor node { id name country totalSpend } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def all_pages(api: Api, first: int, **variables: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        page = (await api.data(PAGE, first=first, after=after, **variables))["customers"]
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(
    ("field", "direction", "key"),
    [("ID", "ASC", "id"), ("NAME", "ASC", "name"), ("NAME", "DESC", "name"),
     ("TOTAL_SPEND", "DESC", "totalSpend"), ("COUNTRY", "ASC", "country")],
)  # fmt: skip
@pytest.mark.parametrize("first", [1, 5, 100])
async def test_pages_have_no_gaps_or_duplicates_even_with_ties(
    shop: None, admin: Api, field: str, direction: str, key: str, first: int
) -> None:
    nodes = await all_pages(admin, first, order={"field": field, "direction": direction})
    ids = [n["id"] for n in nodes]
    assert sorted(ids) == [f"c{i:02d}" for i in range(12)]
    expected = sorted(nodes, key=lambda n: (n[key] if n[key] is not None else "", n["id"]),
                      reverse=direction == "DESC")  # fmt: skip
    assert ids == [n["id"] for n in expected]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"country": {"eq": "GB"}}, {"c00", "c02", "c04", "c08", "c11"}),
        ({"country": {"in": ["DE", "US"]}}, {"c03", "c06", "c07", "c09"}),
        ({"name": {"startsWith": "a"}}, {"c00", "c02", "c07"}),
        ({"email": {"contains": "BOB"}}, {"c01", "c05"}),
        ({"totalSpend": {"gte": 30}}, {"c01", "c04", "c08"}),
        ({"orderCount": {"eq": 0}}, {"c03", "c06", "c10"}),
        ({"signupAt": {"gte": "2023-01-03T00:00:00Z"}}, {"c02", "c05", "c08", "c11"}),
        ({"boughtInCategory": "Home"}, {"c01", "c04", "c08"}),
        ({"boughtProduct": "p1"}, {"c00", "c02", "c05", "c07", "c09", "c11"}),
        ({"knows": {"country": {"eq": "DE"}}}, {"c04", "c06"}),
        ({"knows": {"totalSpend": {"gt": 20}}}, {"c00", "c03"}),
        ({"AND": [{"country": {"eq": "GB"}}, {"totalSpend": {"lt": 20}}]}, {"c00", "c02", "c11"}),
        ({"OR": [{"country": {"eq": "DE"}}, {"name": {"eq": "Eve"}}]}, {"c03", "c06", "c09"}),
        ({"NOT": {"country": {"in": ["GB", "FR"]}}}, {"c03", "c06", "c07", "c09"}),
        ({"id": {"in": ["c01", "zz"]}}, {"c01"}),
    ],
)
async def test_filters(shop: None, admin: Api, where: dict[str, Any], expected: set[str]) -> None:
    nodes = await all_pages(admin, 100, where=where)
    assert {n["id"] for n in nodes} == expected
    count = await admin.data(
        "query($w: CustomerFilter) { customers(where: $w) { totalCount } }", w=where
    )
    assert count["customers"]["totalCount"] == len(expected)


async def test_search_by_name_email_or_phone(shop: None, admin: Api) -> None:
    query = "query($t: String!) { searchCustomers(text: $t) { nodes { id } } }"
    assert {c["id"] for c in (await admin.data(query, t="ANN"))["searchCustomers"]["nodes"]} == {
        "c00", "c02", "c07"
    }  # fmt: skip
    assert [c["id"] for c in (await admin.data(query, t="eve6@"))["searchCustomers"]["nodes"]] == [
        "c06"
    ]
    assert [
        c["id"] for c in (await admin.data(query, t="7946 0009"))["searchCustomers"]["nodes"]
    ] == ["c09"]
    errors = await admin.errors(query, t=" ")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_bad_cursor_and_page_size_are_refused(shop: None, admin: Api) -> None:
    errors = await admin.errors(PAGE, first=5, after="not-a-cursor")
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    errors = await admin.errors(PAGE, first=10_000)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert errors[0]["extensions"]["field"] == "customers.first"


NESTED = """
query Nested($first: Int!) {
  customers(first: $first) {
    totalCount
    nodes {
      id email totalSpend orderCount lastPurchaseAt
      transactions(first: 3) { nodes { id total lines { nodes { quantity product { id name } } } } }
      interactions(types: [TICKET, CALL]) { nodes { id type } }
      productsBought { nodes { product { id } quantity } }
      segments { id }
      socialTies { nodes { type customer { id totalSpend transactions(first: 2) { nodes { id }
        } } } }
    }
  }
}
"""


@pytest.mark.parametrize("slice_s", [None, 1e-9], ids=["slices", "every-item-a-slice"])
async def test_a_nested_query_costs_the_same_round_trips_for_1_or_50_customers(
    store: GraphStore,
    admin: Api,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slice_s: float | None,
) -> None:
    # however busy the machine (slices of a list ending after every item, as on a machine so
    # loaded that each item takes the whole slice), a page's loads go in one batch per level:
    # a list is cut only when no loader of the request holds keys a turn of the loop would send
    if slice_s is not None:
        monkeypatch.setattr("crm_graph.api.schema.LIST_TIME_SLICE_S", slice_s)
    from crm_graph.loaders.synthetic import generate

    generate(tmp_path / "biz", 120, seed=5)
    await load_folder(store, tmp_path / "biz", progress=False)

    async def round_trips(first: int) -> int:
        before = store.round_trips
        data = await admin.data(NESTED, first=first)
        assert len(data["customers"]["nodes"]) == first
        return store.round_trips - before

    await round_trips(1)  # warm-up: the key's first use is recorded once a minute
    one, fifty = await round_trips(1), await round_trips(50)
    assert one == fifty
    assert fifty <= 16


BACKWARDS = """
query Back($order: CustomerOrder, $last: Int, $before: String) {
  customers(orderBy: $order, last: $last, before: $before) {
    edges { cursor node { id name country totalSpend } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.mark.parametrize(
    ("field", "direction"),
    [("ID", "ASC"), ("NAME", "DESC"), ("TOTAL_SPEND", "DESC"), ("COUNTRY", "ASC")],
)
@pytest.mark.parametrize("last", [1, 5])
async def test_pages_read_backwards_are_the_same_list_even_with_ties(
    shop: None, admin: Api, field: str, direction: str, last: int
) -> None:
    # given the whole list read forwards
    order = {"field": field, "direction": direction}
    forwards = [n["id"] for n in await all_pages(admin, 100, order=order)]
    # when it is read backwards from the end, a page at a time with last/before
    backwards: list[str] = []
    before = None
    for _ in range(50):
        page = (await admin.data(BACKWARDS, order=order, last=last, before=before))["customers"]
        ids = [edge["node"]["id"] for edge in page["edges"]]
        info = page["pageInfo"]
        # each page is in the list's order, its cursors at its ends
        assert ids and info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        assert info["hasNextPage"] == (before is not None)
        backwards = ids + backwards
        if not info["hasPreviousPage"]:
            break
        before = info["startCursor"]
    # then it is the same list: no gap, no duplicate
    assert backwards == forwards


async def test_a_page_back_from_a_page_is_the_page_before_it(shop: None, admin: Api) -> None:
    order = {"field": "NAME", "direction": "ASC"}
    first = (await admin.data(PAGE, first=4, order=order))["customers"]
    assert first["pageInfo"]["hasNextPage"]
    second = (await admin.data(PAGE, first=4, order=order,
                               after=first["pageInfo"]["endCursor"]))["customers"]  # fmt: skip
    back = (await admin.data(BACKWARDS, order=order, last=4,
                             before=second["edges"][0]["cursor"]))["customers"]  # fmt: skip
    assert [e["node"]["id"] for e in back["edges"]] == [e["node"]["id"] for e in first["edges"]]
    assert back["pageInfo"]["hasPreviousPage"] is False and back["pageInfo"]["hasNextPage"]
    # the last customers, with no cursor
    tail = (await admin.data(BACKWARDS, order=order, last=3))["customers"]
    everyone = [n["id"] for n in await all_pages(admin, 100, order=order)]
    assert [e["node"]["id"] for e in tail["edges"]] == everyone[-3:]
    assert tail["pageInfo"]["hasNextPage"] is False and tail["pageInfo"]["hasPreviousPage"]


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ("first: 2, last: 2", "customers.last", "first or last"),
        ("first: 2, before: $cursor", "customers.before", "before goes with last"),
        ("last: 2, after: $cursor", "customers.after", "after goes with first"),
        ("last: 101", "customers.last", "between 0 and 100"),
        ("last: -1", "customers.last", "between 0 and 100"),
    ],
)
async def test_page_arguments_that_do_not_go_together_are_refused(
    shop: None, admin: Api, arguments: str, field: str, message: str
) -> None:
    cursor = (await admin.data(PAGE, first=1))["customers"]["pageInfo"]["endCursor"]
    declared, given = ("($cursor: String)", {"cursor": cursor}) if "$" in arguments else ("", {})
    query = f"query{declared} {{ customers({arguments}) {{ nodes {{ id }} }} }}"
    [error] = await admin.errors(query, **given)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field and message in error["message"]


async def test_a_cursor_of_another_ordering_or_forged_is_refused(shop: None, admin: Api) -> None:
    # given a cursor of the list by name
    by_name = {"field": "NAME", "direction": "ASC"}
    cursor = (await admin.data(PAGE, first=2, order=by_name))["customers"]["pageInfo"]["endCursor"]
    # then it is refused for the list by spend, forwards or backwards
    by_spend = {"field": "TOTAL_SPEND", "direction": "ASC"}
    [error] = await admin.errors(PAGE, first=2, order=by_spend, after=cursor)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    assert "another ordering" in error["message"]
    [error] = await admin.errors(BACKWARDS, order=by_spend, last=2, before=cursor)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "before"}
    # and cursors that are not this API's are refused, naming the argument
    for forged in ("", "e30", "WyJJRCIsW10sImMwMSJd", "WyJJRCIsIngiLDFd", cursor[:-3] + "@@@"):
        [error] = await admin.errors(BACKWARDS, order=by_name, last=2, before=forged)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "before"}, forged


SEARCH = """
query Search($t: String!, $first: Int, $after: String, $last: Int, $before: String) {
  searchCustomers(text: $t, first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id name } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_search_pages_both_ways_by_name_ties_broken_by_id(shop: None, admin: Api) -> None:
    # given a search every customer matches (their emails hold "x.org"), with names repeated
    everyone = (await admin.data(SEARCH, t="x.org", first=100))["searchCustomers"]
    ids = [e["node"]["id"] for e in everyone["edges"]]
    assert len(ids) == 12 and not everyone["pageInfo"]["hasNextPage"]
    assert [e["node"]["name"] for e in everyone["edges"]][:3] == ["Ann", "Ann", "Ann"]
    assert ids[:3] == ["c00", "c02", "c07"]  # the tie in names broken by id
    # when it is read forwards two at a time, then backwards two at a time
    forwards: list[str] = []
    after = None
    while True:
        page = (await admin.data(SEARCH, t="x.org", first=2, after=after))["searchCustomers"]
        forwards += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    backwards: list[str] = []
    before = None
    while True:
        page = (await admin.data(SEARCH, t="x.org", last=2, before=before))["searchCustomers"]
        backwards = [e["node"]["id"] for e in page["edges"]] + backwards
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    # then both are the whole list, in order
    assert forwards == ids and backwards == ids
    # and a customers cursor is no search cursor
    other = (await admin.data(PAGE, first=1))["customers"]["pageInfo"]["endCursor"]
    [error] = await admin.errors(SEARCH, t="x.org", first=2, after=other)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
