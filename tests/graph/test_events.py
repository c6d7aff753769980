"""The outbox (`graph/events.py`) under `crm-graph load` and a training: one event per row
written, none for a rejected row; one per training run; the reading side's contract."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from crm_graph.graph import events
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.helpers import write_csv


def small_business(folder: Path) -> Path:
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": "Ann", "email": "ann@x.org"},
        {"customer_id": "c2", "name": "Bob"},
        {"customer_id": "c3", "name": "Cy", "email": "not an email"},
        {"customer_id": "", "name": "nobody"},
    ])  # fmt: skip
    write_csv(folder / "products.csv", [{"product_id": "p1", "name": "Mug", "price": "5"}])
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p1", "quantity": "2", "unit_price": "2.5"},
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "amount": "1.1"},
        {"transaction_id": "t2", "customer_id": "ghost", "timestamp": "2024-01-01",
         "amount": "3"},
    ])  # fmt: skip
    write_csv(folder / "interactions.csv", [
        {"interaction_id": "i1", "customer_id": "c2", "timestamp": "2024-01-02", "type": "chat"},
        {"interaction_id": "i2", "customer_id": "c2", "timestamp": "2024-01-02", "type": "fax"},
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": "c1", "target_customer_id": "c2", "type": "FAMILY"},
        {"source_customer_id": "c1", "target_customer_id": "c1"},
    ])  # fmt: skip
    return folder


async def test_a_load_writes_one_event_per_row_written_and_none_for_a_rejected_one(
    store: GraphStore, tmp_path: Path
) -> None:
    # given a folder with good rows and rejected ones
    folder = small_business(tmp_path / "biz")
    # when it is loaded
    report = await load_folder(store, folder, progress=False, rejects_path=tmp_path / "rej.csv")
    assert sum(f.rejected for f in report.files) == 4
    # then each written row has its one event, in file order, and no rejected row has one
    found = await events.events_after(store, 0, limit=1000)
    assert [(e.sequence, e.type, e.customer_ids) for e in found] == [
        (1, "customer.created", ("c1",)),
        (2, "customer.created", ("c2",)),
        (3, "customer.created", ("c3",)),  # its bad email dropped, the row kept
        (4, "transaction.recorded", ("c1",)),
        (5, "interaction.recorded", ("c2",)),
        (6, "tie.recorded", ("c1", "c2")),
    ]
    assert found[3].data == {"customerId": "c1", "productIds": ["p1"], "total": "6.10",
                             "transactionId": "t1"}  # fmt: skip
    assert found[5].data == {"sourceId": "c1", "targetId": "c2", "type": "FAMILY"}
    assert await events.last_sequence(store) == 6

    # and loading it again writes the rows again: updates, recorded again, numbered on
    await load_folder(store, folder, progress=False, rejects_path=tmp_path / "rej2.csv")
    again = await events.events_after(store, 6, limit=1000)
    assert [e.sequence for e in again] == list(range(7, 13))
    assert Counter(e.type for e in again) == {
        "customer.updated": 3,
        "transaction.recorded": 1,
        "interaction.recorded": 1,
        "tie.recorded": 1,
    }


async def test_events_after_pages_filters_and_refuses_unknown_types(
    store: GraphStore, tmp_path: Path
) -> None:
    await load_folder(store, small_business(tmp_path / "biz"), progress=False,
                      rejects_path=tmp_path / "rej.csv")  # fmt: skip
    page = await events.events_after(store, 0, limit=2)
    assert [e.sequence for e in page] == [1, 2]
    rest = await events.events_after(store, page[-1].sequence, limit=100)
    assert [e.sequence for e in rest] == [3, 4, 5, 6]
    ties = await events.events_after(store, 0, types=["tie.recorded", "customer.created"])
    assert [e.type for e in ties] == ["customer.created"] * 3 + ["tie.recorded"]
    assert await events.events_after(store, 6) == []
    with pytest.raises(ValueError, match=r"unknown event type\(s\) customer\.deleted"):
        await events.events_after(store, 0, types=["customer.deleted"])
    with pytest.raises(ValueError, match="limit"):
        await events.events_after(store, 0, limit=0)


async def test_an_empty_store_has_no_event_and_prune_keeps_the_numbering(
    store: GraphStore, tmp_path: Path
) -> None:
    assert await events.last_sequence(store) == 0
    assert await events.events_after(store, 0) == []
    await load_folder(store, small_business(tmp_path / "biz"), progress=False,
                      rejects_path=tmp_path / "rej.csv")  # fmt: skip
    written = await events.events_after(store, 0)
    # pruning the events before the newest one's time leaves the later ones, numbers unchanged
    assert await events.prune(store, written[0].at_ms) == 0
    assert await events.prune(store, written[-1].at_ms + 1) == 6
    assert await events.events_after(store, 0) == []
    await events.record(store, events.SCORES_WRITTEN, [], version="v1", customers=3)
    (scored,) = await events.events_after(store, 0)
    assert scored.sequence == 7 and scored.customer_ids == ()
    assert scored.data == {"customers": 3, "version": "v1"}
    with pytest.raises(ValueError, match="unknown event type"):
        await events.record(store, "scores.deleted", [])
