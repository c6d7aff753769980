"""The outbox through the mutations: every acknowledged write leaves exactly one event of its
kind, in the same statement; a refused one leaves none."""

from __future__ import annotations

from crm_graph.graph import events
from crm_graph.graph.store import GraphStore
from tests.api.test_mutations import (
    ERASE,
    LINK,
    MERGE,
    RECORD_INTERACTION,
    RECORD_TRANSACTION,
    UPSERT,
)
from tests.conftest import Api


async def new_events(store: GraphStore, after: int) -> list[events.Event]:
    return await events.events_after(store, after, limit=1000)


async def test_each_mutation_writes_exactly_one_event(
    shop: None, store: GraphStore, admin: Api
) -> None:
    # given the shop loaded (its own events written)
    start = await events.last_sequence(store)
    assert start > 0
    # when a customer is created, then updated
    await admin.data(UPSERT, input=[{"id": "n1", "name": "Nia", "email": "nia@x.org"}])
    await admin.data(UPSERT, input=[{"id": "n1", "city": "Leeds"}])
    # and an order, a contact and a tie are recorded, two customers merged, one erased
    order = {"id": "o9", "customerId": "n1", "at": "2024-05-01T10:00:00Z",
             "lines": [{"productId": "p1", "quantity": 2, "unitPrice": 5.25}]}  # fmt: skip
    await admin.data(RECORD_TRANSACTION, input=order)
    contact = {"id": "i9", "customerId": "n1", "at": "2024-05-01T10:00:00Z", "type": "CALL"}
    await admin.data(RECORD_INTERACTION, input=contact)
    await admin.data(LINK, input={"sourceId": "n1", "targetId": "c02", "type": "KNOWS"})
    await admin.data(MERGE, ids=["c04", "c05"], dry=True)  # a dry run changes nothing
    await admin.data(MERGE, ids=["c04", "c05"], dry=False)
    erased = (await admin.data(ERASE, id="c07"))["eraseCustomer"]
    # then each wrote one event, in order, numbered one after the other
    found = await new_events(store, start)
    assert [e.sequence for e in found] == list(range(start + 1, start + 8))
    assert [(e.type, e.customer_ids) for e in found] == [
        ("customer.created", ("n1",)),
        ("customer.updated", ("n1",)),
        ("transaction.recorded", ("n1",)),
        ("interaction.recorded", ("n1",)),
        ("tie.recorded", ("n1", "c02")),
        ("customer.merged", ("c04", "c05")),
        ("customer.erased", ("c07",)),
    ]
    assert found[0].data == {"customerId": "n1", "fields": ["email", "name"]}
    assert found[1].data == {"customerId": "n1", "fields": ["city"]}
    assert found[2].data == {"customerId": "n1", "productIds": ["p1"], "total": "10.50",
                             "transactionId": "o9"}  # fmt: skip
    assert found[3].data["interactionId"] == "i9" and found[3].data["type"] == "call"
    assert found[4].data == {"sourceId": "n1", "targetId": "c02", "type": "KNOWS"}
    assert found[5].data["keptId"] == "c04" and found[5].data["mergedIds"] == ["c05"]
    assert found[6].data == {"anonymousId": erased["anonymousId"], "customerId": "c07"}
    # no personal value travels: names, emails, cities are nowhere in the events
    text = repr([e.data for e in found])
    assert "Nia" not in text and "nia@x.org" not in text and "Leeds" not in text
    assert all(e.at_ms > 1_600_000_000_000 for e in found)


async def test_refused_writes_write_no_event(shop: None, store: GraphStore, admin: Api) -> None:
    start = await events.last_sequence(store)
    # bad input
    bad = await admin.data(UPSERT, input=[{"id": "x", "email": "not an email"}])
    assert bad["upsertCustomers"]["code"] == "INVALID"
    # an unknown customer, an unknown product
    order = {"id": "o1", "customerId": "ghost", "at": "2024-05-01T10:00:00Z",
             "lines": [{"productId": "p1", "quantity": 1, "unitPrice": 5}]}  # fmt: skip
    assert (await admin.data(RECORD_TRANSACTION, input=order))["recordTransaction"]["code"] == (
        "NOT_FOUND"
    )
    order = {**order, "customerId": "c00", "lines": [{"productId": "nope", "amount": 1}]}
    refused = (await admin.data(RECORD_TRANSACTION, input=order))["recordTransaction"]
    assert refused["__typename"] == "RecordTransactionError"
    # a self-tie (a conflict), an erase or merge of nobody
    tie = {"sourceId": "c01", "targetId": "c01"}
    assert (await admin.data(LINK, input=tie))["linkCustomers"]["__typename"] == (
        "LinkCustomersError"
    )
    assert (await admin.data(ERASE, id="nobody"))["eraseCustomer"]["code"] == "NOT_FOUND"
    merge = (await admin.data(MERGE, ids=["c01", "nobody"], dry=False))["mergeCustomers"]
    assert merge["code"] == "NOT_FOUND"
    # then no event, and the counter did not move
    assert await new_events(store, start) == []
    assert await events.last_sequence(store) == start
