"""`upsertCustomers` and the source records of the customers it updates (issue h21).

A customer's source records say which systems it came from, and a partner key limited with
`--customers source:acme` sees the customers with a record of `acme`. An admin's upsert of an
existing customer used to relabel its record to the system `default` (the input named none), which
took the customer out of the partner's scope, for queries too. An upsert keeps the systems stored;
it records a system only for a record it creates, and refuses to move a stored record to another
system.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crm_graph.api.auth.principal import Role
from crm_graph.graph.access import CustomerScope
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.conftest import Api
from tests.helpers import broad_partner_scopes, write_csv

UPSERT = """
mutation($input: [CustomerInput!]!) {
  upsertCustomers(input: $input) {
    __typename
    ... on UpsertCustomersSuccess { customers { id city } merges { customerId mergedId rule } }
    ... on UpsertCustomersError { code field message problems { field message } }
  }
}
"""
CUSTOMER = "query($id: ID!) { customer(id: $id) { id city } }"
SYSTEMS = (
    "MATCH (c:Customer)-[:HAS_SOURCE]->(s:SourceRecord) "
    "RETURN c.id AS customer, s.id AS record, s.system AS system ORDER BY record"
)


async def _load(store: GraphStore, tmp_path: Path) -> None:
    """a1 from acme; b1 from crm, the same person by email (merged into a1); z9 from crm."""
    folder = tmp_path / "load"
    write_csv(folder / "customers.csv", [
        {"customer_id": "a1", "name": "Ann", "email": "ann@x.org", "city": "York",
         "source_system": "acme"},
        {"customer_id": "b1", "name": "Ann B", "email": "ANN@x.org", "source_system": "crm"},
        {"customer_id": "z9", "name": "Zed", "city": "Hull", "source_system": "crm"},
    ])  # fmt: skip
    await load_folder(store, folder, progress=False)


async def _systems(store: GraphStore) -> list[dict[str, Any]]:
    return await store.read(SYSTEMS)


async def _acme_partner(api_for: Callable[..., Any]) -> Api:
    partner: Api = await api_for(
        Role.PARTNER, scopes=broad_partner_scopes(), customers=CustomerScope(systems=("acme",))
    )
    return partner


LOADED = [
    {"customer": "a1", "record": "a1", "system": "acme"},
    {"customer": "a1", "record": "b1", "system": "crm"},
    {"customer": "z9", "record": "z9", "system": "crm"},
]


async def test_an_admin_upsert_keeps_the_customer_in_a_source_scoped_partners_scope(
    store: GraphStore, tmp_path: Path, admin: Api, api_for: Callable[..., Any]
) -> None:
    await _load(store, tmp_path)
    assert await _systems(store) == LOADED
    partner = await _acme_partner(api_for)
    assert (await partner.data(CUSTOMER, id="a1"))["customer"] == {"id": "a1", "city": "York"}

    updated = (await admin.data(UPSERT, input=[{"id": "a1", "city": "Leeds"}]))["upsertCustomers"]
    assert updated["__typename"] == "UpsertCustomersSuccess"
    assert updated["customers"] == [{"id": "a1", "city": "Leeds"}]
    # the merged record of crm, written through its own id: neither record changes system
    merged = (await admin.data(UPSERT, input=[{"id": "b1", "name": "Ann B."}]))["upsertCustomers"]
    assert merged["__typename"] == "UpsertCustomersSuccess"
    assert merged["customers"] == [{"id": "a1", "city": "Leeds"}]

    assert await _systems(store) == LOADED
    assert (await partner.data(CUSTOMER, id="a1"))["customer"] == {"id": "a1", "city": "Leeds"}
    # and the customer of crm only stays out of the partner's scope
    assert (await partner.data(CUSTOMER, id="z9"))["customer"] is None


async def test_an_upsert_naming_the_stored_system_changes_no_record(
    store: GraphStore, tmp_path: Path, admin: Api, api_for: Callable[..., Any]
) -> None:
    await _load(store, tmp_path)
    result = (
        await admin.data(UPSERT, input=[{"id": "a1", "city": "Leeds", "sourceSystem": "acme"}])
    )["upsertCustomers"]
    assert result["__typename"] == "UpsertCustomersSuccess"
    assert await _systems(store) == LOADED
    partner = await _acme_partner(api_for)
    assert (await partner.data(CUSTOMER, id="a1"))["customer"] == {"id": "a1", "city": "Leeds"}


async def test_an_upsert_moving_a_stored_record_to_another_system_is_refused(
    store: GraphStore, tmp_path: Path, admin: Api, api_for: Callable[..., Any]
) -> None:
    await _load(store, tmp_path)
    result = (
        await admin.data(
            UPSERT,
            input=[
                {"id": "n1", "name": "New", "sourceSystem": "acme"},
                {"id": "a1", "city": "Leeds", "sourceSystem": "shop"},
            ],
        )
    )["upsertCustomers"]
    assert result["__typename"] == "UpsertCustomersError"
    assert result["code"] == "CONFLICT"
    assert result["field"] == "input[1].sourceSystem"
    assert "a1" in result["message"] and "acme" in result["message"]
    assert "shop" in result["message"]
    # all or none: nothing of the batch was written
    assert await _systems(store) == LOADED
    partner = await _acme_partner(api_for)
    assert (await partner.data(CUSTOMER, id="a1"))["customer"] == {"id": "a1", "city": "York"}
    assert (await admin.data(CUSTOMER, id="n1"))["customer"] is None


async def test_a_new_customer_records_the_system_its_input_names_or_default(
    store: GraphStore, admin: Api, api_for: Callable[..., Any]
) -> None:
    created = (
        await admin.data(
            UPSERT,
            input=[
                {"id": "n1", "city": "Ely", "sourceSystem": "acme"},
                {"id": "n2", "city": "Rye"},
            ],
        )
    )["upsertCustomers"]
    assert created["__typename"] == "UpsertCustomersSuccess"
    assert await _systems(store) == [
        {"customer": "n1", "record": "n1", "system": "acme"},
        {"customer": "n2", "record": "n2", "system": "default"},
    ]
    partner = await _acme_partner(api_for)
    assert (await partner.data(CUSTOMER, id="n1"))["customer"] == {"id": "n1", "city": "Ely"}
    assert (await partner.data(CUSTOMER, id="n2"))["customer"] is None
    # updated later without a system: still acme
    await admin.data(UPSERT, input=[{"id": "n1", "city": "Ripon"}])
    assert (await partner.data(CUSTOMER, id="n1"))["customer"] == {"id": "n1", "city": "Ripon"}


async def test_a_partner_key_cannot_upsert_customers(
    store: GraphStore, tmp_path: Path, api_for: Callable[..., Any]
) -> None:
    """Partners do not write at all: their scope cannot be changed by their own upsert."""
    await _load(store, tmp_path)
    partner = await _acme_partner(api_for)
    errors = await partner.errors(UPSERT, input=[{"id": "a1", "city": "Leeds"}])
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    assert await _systems(store) == LOADED
