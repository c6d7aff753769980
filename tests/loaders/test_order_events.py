"""An order's `transaction.recorded` events through `load`, when its lines are far apart in the
file (so in several batches): each event names every product the stored order holds and the
order's total at that point, the last one its final state; the stored total is exact. A
partner adding up orders by their last event per transaction id counts each order once, right.
On each engine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from crm_graph.graph import events
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.helpers import write_csv


def _line(order: str, product: str, amount: str) -> dict[str, str]:
    return {"transaction_id": order, "customer_id": "c1", "timestamp": "2024-01-01",
            "product_id": product, "amount": amount}  # fmt: skip


async def test_an_order_over_several_batches_is_recorded_whole_each_time(
    store: GraphStore, tmp_path: Path
) -> None:
    folder = tmp_path / "shop"
    write_csv(folder / "customers.csv", [{"customer_id": "c1", "name": "Ann"}])
    write_csv(
        folder / "products.csv",
        [{"product_id": f"p{i}", "name": f"P{i}", "price": "1"} for i in range(1, 5)],
    )
    write_csv(
        folder / "transactions.csv",
        [
            _line("t1", "p1", "10.10"),
            _line("t2", "p4", "1.00"),
            _line("t1", "p2", "20.20"),
            _line("t2", "p4", "2.00"),
            _line("t1", "p3", "30.30"),
        ],
    )
    await load_folder(store, folder, progress=False, batch_size=2)

    recorded = [
        e for e in await events.events_after(store, 0, limit=100)
        if e.type == events.TRANSACTION_RECORDED
    ]  # fmt: skip
    by_order: dict[str, list[dict[str, object]]] = {}
    for event in recorded:
        by_order.setdefault(str(event.data["transactionId"]), []).append(event.data)
    assert set(by_order) == {"t1", "t2"}
    prices = {"p1": Decimal("10.10"), "p2": Decimal("20.20"), "p3": Decimal("30.30")}
    for data in by_order["t1"]:  # each event: the products stored then, and their total
        named = list(data["productIds"])  # type: ignore[call-overload]
        assert named == sorted(named)
        assert Decimal(str(data["total"])) == sum(prices[p] for p in named)
    assert by_order["t1"][-1]["productIds"] == ["p1", "p2", "p3"]
    assert by_order["t1"][-1]["total"] == "60.60"
    assert by_order["t2"][-1]["productIds"] == ["p4"]
    assert by_order["t2"][-1]["total"] == "3.00"
    stored = await store.read(
        "MATCH (t:Transaction) RETURN t.id AS id, t.total AS total ORDER BY id"
    )
    assert [(r["id"], Decimal(str(r["total"]))) for r in stored] == [
        ("t1", Decimal("60.60")), ("t2", Decimal("3.00"))
    ]  # fmt: skip
