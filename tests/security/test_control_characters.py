"""Control characters in ids and category names are refused, because one of them crashes the
store: FalkorDB 4.16 dies (SIGSEGV in EnforceUniqueEntity) when a property under a unique
constraint is written with U+0001 in it, taking every connection with it. Found by
`test_graphql_fuzz.py::test_mutation_inputs`.

These tests run on an embedded server of their own, so that a regression fails them alone and
not, by killing the session's shared server, every test after them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store
from crm_graph.loaders.load import load_folder
from tests.conftest import Api
from tests.helpers import read_rejects, write_csv

CONTROL = "\x01"


@pytest.fixture
async def own_store(tmp_path: Path) -> AsyncIterator[GraphStore]:
    store = await open_store(StoreSettings(kind="embedded", data_dir=tmp_path / "own"))
    yield store
    await store.close()


async def _alive(store: GraphStore) -> None:
    await store.ping()
    assert await store.read("MATCH (c:Customer) RETURN count(c) AS n")


MUTATIONS = [
    ("upsertCustomers", "[CustomerInput!]!", [{"id": f"c{CONTROL}1", "name": "Ann"}],
     "input[0].id"),
    ("recordTransaction", "TransactionInput!",
     {"id": f"t{CONTROL}1", "customerId": "c1", "at": "2024-01-01T00:00:00Z", "lines": [{}]},
     "input.id"),
    ("recordTransaction", "TransactionInput!",
     {"id": "t2", "customerId": "c1", "at": "2024-01-01T00:00:00Z",
      "lines": [{"productId": f"p{CONTROL}1", "amount": 3}]}, "input.lines[0].productId"),
    ("recordInteraction", "InteractionInput!",
     {"id": f"i{CONTROL}1", "customerId": "c1", "at": "2024-01-01T00:00:00Z", "type": "CALL"},
     "input.id"),
    ("linkCustomers", "LinkCustomersInput!", {"sourceId": "c1", "targetId": f"c{CONTROL}2"},
     "input.targetId"),
]  # fmt: skip


async def test_mutations_refuse_ids_with_control_characters(own_store: GraphStore) -> None:
    # given the app on a store of its own, with one customer
    app = create_app(StoreSettings(), store=own_store, rate_limiter=None)
    _, key = await create_key(own_store, Role.ADMIN, "ops")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        admin = Api(client, key)
        upsert = "mutation($v: [CustomerInput!]!) { upsertCustomers(input: $v) { __typename } }"
        await admin.data(upsert, v=[{"id": "c1", "name": f"Ann{CONTROL}"}])  # text: fine
        for name, kind, value, field in MUTATIONS:
            # when a mutation is given an id with U+0001
            result = await admin.data(
                f"mutation($v: {kind}) {{ {name}(input: $v) {{ __typename "
                f"... on MutationError {{ code field problems {{ field message }} }} }} }}",
                v=value,
            )
            # then it is refused as invalid, naming the field, and the store is still there
            answer: dict[str, Any] = result[name]
            assert answer["code"] == "INVALID", answer
            assert answer["field"] == field
            assert answer["problems"][0]["message"] == "contains a control character"
            await _alive(own_store)


async def test_loading_rejects_ids_and_categories_with_control_characters(
    own_store: GraphStore, tmp_path: Path
) -> None:
    # given files whose ids and category carry U+0001 (and a name, which is free text)
    folder = tmp_path / "contract"
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": f"Ann{CONTROL}"},
        {"customer_id": f"c{CONTROL}2", "name": "Bob"},
    ])  # fmt: skip
    write_csv(folder / "products.csv", [
        {"product_id": "p1", "name": "Mug", "category": f"Kitchen{CONTROL}"},
        {"product_id": f"p{CONTROL}2", "name": "Lamp"},
    ])  # fmt: skip
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": f"p{CONTROL}3", "amount": "5"},
    ])  # fmt: skip
    # when it is loaded
    report = await load_folder(own_store, folder, progress=False)
    # then those rows are rejected (the category dropped), the rest loaded, the store alive
    await _alive(own_store)
    rejects = {(r["file"], r["column"]): r["reason"] for r in read_rejects(report.rejects_path)}
    assert rejects == {
        ("customers.csv", "customer_id"): "contains a control character",
        ("products.csv", "product_id"): "contains a control character",
        ("products.csv", "category"): "dropped: contains a control character",
        ("transactions.csv", "product_id"): "contains a control character",
    }
    rows = await own_store.read("MATCH (n) WHERE n:Customer OR n:Product RETURN n.id AS id")
    assert sorted(r["id"] for r in rows) == ["c1", "p1"]
