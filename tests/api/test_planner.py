"""The 360 look-ahead planner (`api.customers.planner`): its one private access (graphql-core's
resolve info behind Strawberry's `Info`) is guarded, and the public path it falls back to gives
the same answers; its walk of the selection visits each fragment once however often it is
spread."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from crm_graph.api.customers import planner
from crm_graph.graph.store import GraphStore
from tests.conftest import Api
from tests.helpers import AUDIT

PARTS = """query($id: ID!) { customer(id: $id) { id name totalSpend orderCount
  transactions(first: 3) {
    totalCount nodes { id total lines { nodes { quantity product { id } } } } }
  interactions(first: 4) { totalCount nodes { id type } }
  socialTies(first: 10) { totalCount nodes { type direction customer { id name } } } } }"""
"""Every part of the view: the figures, orders with their lines, contacts and ties."""


async def test_the_guarded_path_plans_one_statement_and_the_public_path_answers_the_same(
    shop: None, store: GraphStore, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given customers with orders and ties, when the 360 asks for every part, then with the
    resolve info found (this Strawberry) the parts come with the profile in one statement; when
    the guard finds none (a Strawberry without `_raw_info`), then the same answer comes, each
    part by its own statement."""
    await admin.data("{ __typename }")  # the key's first use is recorded once a minute
    before = store.round_trips
    await admin.data("{ __typename }")
    key_only = store.round_trips - before

    async def asked(customer: str) -> tuple[int, dict[str, Any]]:
        before = store.round_trips
        data = await admin.data(PARTS, id=customer)
        return store.round_trips - before, data

    planned = {c: await asked(c) for c in ("c00", "c03", "c04")}
    assert {trips for trips, _ in planned.values()} == {key_only + 1 + AUDIT}
    assert planned["c00"][1]["customer"]["transactions"]["nodes"]  # something to compare
    assert planned["c03"][1]["customer"]["socialTies"]["totalCount"] == 2

    monkeypatch.setattr(planner, "selection_info", lambda info: None)
    for customer, (_, data) in planned.items():
        trips, public = await asked(customer)
        assert public == data
        # the profile, the figures, the orders (with their lines), the contacts, the ties
        assert trips == key_only + 5 + AUDIT


class _CountingFragments(dict[str, FragmentDefinitionNode]):
    looked_up = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up += 1
        return super().get(key, default)


def test_the_walk_visits_each_fragment_once_however_often_it_is_spread() -> None:
    # given 16 fragments each spreading the next twice: 2^16 paths (Strawberry's public
    # `selected_fields` converts every one: 17 s measured for this document)
    lines = 16
    fragments_text = [
        f"fragment F{i} on Customer {{ id ...F{i + 1} ...F{i + 1} }}" for i in range(lines)
    ] + [f"fragment F{lines} on Customer {{ name transactions {{ nodes {{ id }} }} }}"]
    document = parse('{ customer(id: "x") { ...F0 } } ' + " ".join(fragments_text))
    fragments = _CountingFragments(
        (d.name.value, d) for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    )
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    customer = operation.selection_set.selections[0]
    # when the planner walks the customer's selection
    found = planner._all_fields([customer], fragments)  # type: ignore[list-item]
    # then it finds the fields through every fragment, looking each fragment up once
    assert {"id", "name", "transactions"} <= set(found)
    assert fragments.looked_up == lines + 1
