"""The admin lists (the audit log, a webhook's deliveries) are connections like every growing
list: paged forwards and backwards by cursor, newest first, every entry on exactly one page
(audit entries of one request at the same millisecond included, and entries written before
entries had ids), filters applied to the count as to the pages; sizes bounded by the one page
limit. Through the real app, on each engine."""

from __future__ import annotations

from typing import Any

from crm_graph.api.pagination import MAX_PAGE
from crm_graph.graph import audit
from crm_graph.graph.store import GraphStore
from tests.conftest import Api

T0 = 1_780_000_000_000

PAGE = """
query($customer: ID, $key: String, $first: Int, $after: String, $last: Int, $before: String) {
  auditLog(customerId: $customer, keyId: $key, first: $first, after: $after, last: $last,
           before: $before) {
    totalCount
    edges { cursor node { id keyId at requestId customerIds } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _log(store: GraphStore) -> list[audit.AuditEntry]:
    """25 entries: a subscription's 4 results in one millisecond under one request id, pairs of
    requests at the same instant, 3 entries stored before entries had ids (no `id`)."""
    written = [
        audit.AuditEntry(
            f"k{i % 2}", "query customer", [f"c{i % 3}"], T0 + 1000 * (i // 2), f"req-{i}"
        )
        for i in range(18)
    ]
    written += [
        audit.AuditEntry("k0", "subscription customerChanged", ["c1"], T0 + 500, "req-sub")
        for _ in range(4)
    ]
    await audit.record(store, written)
    await store.audit_graph().write(  # as moved from an earlier release's customers' graph
        "UNWIND range(0, 2) AS i CREATE (:AuditEntry {keyId: 'k1', operation: 'query customer', "
        "customers: ['c2'], at: $at, requestId: 'old-' + toString(i)})",
        {"at": T0 + 700},
    )
    return written


async def _all(admin: Api, backwards: bool, size: int, **filters: Any) -> list[dict[str, Any]]:
    """Every entry, page by page (`size` a page), in the log's order."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        if backwards:
            answer = await admin.data(PAGE, last=size, before=cursor, **filters)
        else:
            answer = await admin.data(PAGE, first=size, after=cursor, **filters)
        log = answer["auditLog"]
        nodes = [e["node"] for e in log["edges"]]
        assert len(nodes) <= size
        info = log["pageInfo"]
        pages.append(nodes)
        more = info["hasPreviousPage"] if backwards else info["hasNextPage"]
        if not more:
            break
        assert len(nodes) == size
        cursor = info["startCursor"] if backwards else info["endCursor"]
    if backwards:
        pages.reverse()
    return [e for page in pages for e in page]


async def test_every_entry_on_exactly_one_page_both_ways(store: GraphStore, admin: Api) -> None:
    await _log(store)
    forwards = await _all(admin, backwards=False, size=4)
    backwards = await _all(admin, backwards=True, size=3)
    assert len(forwards) == 25
    assert len({e["id"] for e in forwards}) == 25  # the 4 results of one request told apart
    assert forwards == backwards
    ats = [e["at"] for e in forwards]
    assert ats == sorted(ats, reverse=True)  # newest first
    assert sum(e["requestId"] == "req-sub" for e in forwards) == 4
    assert {e["id"] for e in forwards if e["requestId"].startswith("old-")} == {
        "old-0", "old-1", "old-2"
    }  # fmt: skip
    first = await admin.data(PAGE, first=5)
    assert first["auditLog"]["totalCount"] == 25
    assert first["auditLog"]["pageInfo"]["hasPreviousPage"] is False


async def test_filters_apply_to_pages_and_count(store: GraphStore, admin: Api) -> None:
    await _log(store)
    shown = await _all(admin, backwards=False, size=2, customer="c2", key="k1")
    assert shown and all(e["keyId"] == "k1" and "c2" in e["customerIds"] for e in shown)
    expected = [i for i in range(18) if i % 2 == 1 and i % 3 == 2]
    assert len(shown) == len(expected) + 3  # and the 3 entries written before ids
    counted = await admin.data(PAGE, first=1, customer="c2", key="k1")
    assert counted["auditLog"]["totalCount"] == len(shown)


async def test_sizes_and_cursors_are_checked(store: GraphStore, admin: Api) -> None:
    await _log(store)
    too_many = await admin.errors(PAGE, first=MAX_PAGE + 1)
    assert too_many[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert str(MAX_PAGE) in too_many[0]["message"]
    await store.write("CREATE (:Customer {id: 'c1', name: 'Ann'})")
    customers = await admin.data("{ customers(first: 1) { pageInfo { endCursor } } }")
    other = customers["customers"]["pageInfo"]["endCursor"]
    refused = await admin.errors(PAGE, first=2, after=other)  # a cursor of another list
    assert "another ordering" in refused[0]["message"]
    refused = await admin.errors(PAGE, first=2, after="not-a-cursor")
    assert refused[0]["extensions"]["code"] == "BAD_USER_INPUT"


DELIVERIES = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  webhookDeliveries(id: $id, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    nodes { id sequence status }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_a_webhooks_deliveries_page_both_ways(store: GraphStore, admin: Api) -> None:
    await store.write(
        "UNWIND range(1, 11) AS s CREATE (:WebhookDelivery {id: 'd' + toString(s), "
        "webhookId: 'wh_a', sequence: s, type: 'customer.updated', status: 'delivered', "
        "attempts: 1})"
    )
    await store.write(
        "CREATE (:WebhookDelivery {id: 'other', webhookId: 'wh_b', sequence: 4, "
        "type: 'customer.updated', status: 'pending', attempts: 0})"
    )
    seen: list[int] = []
    cursor = None
    while True:
        page = await admin.data(DELIVERIES, id="wh_a", first=4, after=cursor)
        listed = page["webhookDeliveries"]
        assert listed["totalCount"] == 11
        seen += [n["sequence"] for n in listed["nodes"]]
        if not listed["pageInfo"]["hasNextPage"]:
            break
        cursor = listed["pageInfo"]["endCursor"]
    assert seen == list(range(11, 0, -1))  # newest first, each once, none of the other hook's
    oldest = (await admin.data(DELIVERIES, id="wh_a", last=3))["webhookDeliveries"]
    assert [n["sequence"] for n in oldest["nodes"]] == [3, 2, 1]
    assert oldest["pageInfo"]["hasPreviousPage"] is True
    newer = await admin.data(
        DELIVERIES, id="wh_a", last=3, before=oldest["pageInfo"]["startCursor"]
    )
    assert [n["sequence"] for n in newer["webhookDeliveries"]["nodes"]] == [6, 5, 4]
    unknown = (await admin.data(DELIVERIES, id="wh_nobody"))["webhookDeliveries"]
    assert unknown["totalCount"] == 0 and unknown["nodes"] == []
