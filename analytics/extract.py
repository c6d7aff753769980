"""Reading the graph into the tables of `analytics.frames`, a batch of customers at a time.

Everything is read once (events before `before`, default: all); each analytics function then
cuts at its own `as_of`. Personal fields (name, email, phone, city) are not read as features, and
neither are the properties analytics wrote back (`ml*`): a model never learns from its own
earlier scores.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crm_graph.analytics import frames
from crm_graph.graph import analytics_queries
from crm_graph.graph.store import GraphStore

NOT_FEATURES = frozenset({"id", "name", "email", "phone", "city", "signupAt", "erased", "erasedAt"})
NOT_READ = NOT_FEATURES - {"signupAt"}
"""Properties the reader leaves in the store (the id comes in its own column)."""
SCORE_PREFIX = "ml"
FAR_FUTURE_MS = 2**53 - 1


@dataclass
class Tables:
    customers: pd.DataFrame
    orders: pd.DataFrame
    lines: pd.DataFrame
    interactions: pd.DataFrame
    ties: pd.DataFrame

    @property
    def last_event(self) -> pd.Timestamp | None:
        """The latest order or contact: the natural `as_of` for scoring today."""
        stamps = [f["at"].max() for f in (self.orders, self.interactions) if len(f)]
        return max(stamps) if stamps else None


def _instants(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms.astype("float64"), unit="ms", utc=True)


def _frame(
    read: dict[str, list[Any]], columns: tuple[str, ...], instants: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The table of `columns` from columns read in batches (none read: the empty table)."""
    found = bool(read) and len(next(iter(read.values()))) > 0
    frame = pd.DataFrame({c: read[c] for c in columns}) if found else frames.empty(columns)
    for name in instants:
        frame[name] = _instants(frame[name]) if found else pd.Series(dtype="datetime64[ns, UTC]")
    return frame


READ_AHEAD = 2
"""Batches of customers read at the same time."""


async def read_tables(
    store: GraphStore, *, before: pd.Timestamp | None = None, batch_size: int = 5000
) -> Tables:
    """The customers and their orders, lines, contacts and ties (before `before`)."""
    with frames.collector_paused():
        return await _read_tables(store, before, batch_size)


async def _read_tables(store: GraphStore, before: pd.Timestamp | None, batch_size: int) -> Tables:
    cutoff = FAR_FUTURE_MS if before is None else int(before.timestamp() * 1000)
    # Ids and kinds repeat in many rows (a customer's id in each of their orders, lines'
    # product ids, tie types): each is read into one string (at 100k customers the tables took
    # 320 MB instead of 615). A transaction's order and lines come in the same batch.
    customer_ids: dict[str, str] = {}
    kinds: dict[str, str] = {}
    read = await store.read_columns(
        analytics_queries.CUSTOMER_PROFILES,
        {"skip": sorted(NOT_READ), "scores": SCORE_PREFIX},
        shared={"id": customer_ids},
    )
    profiles = [
        {"customer_id": customer_id, **dict(zip(names, values, strict=True))}
        for customer_id, names, values in zip(read["id"], read["names"], read["values"],
                                              strict=True)
    ]  # fmt: skip
    customers = pd.DataFrame(profiles) if profiles else frames.empty(frames.CUSTOMERS)
    customers = customers.rename(columns={"signupAt": "signup_at"})
    for column in frames.CUSTOMERS:
        if column not in customers.columns:
            customers[column] = None
    customers["signup_at"] = _instants(customers["signup_at"]) if profiles else pd.Series(
        dtype="datetime64[ns, UTC]")  # fmt: skip
    # the extra properties sorted by name: each engine returns a node's keys in its own order,
    # and a model's columns must not depend on it (gradient boosting's ties between equally
    # good splits go to the first column: mlc-churn's AUC moved by 0.002 with the order)
    extra = sorted(c for c in customers.columns if c not in frames.CUSTOMERS)
    customers = customers[[*frames.CUSTOMERS, *extra]].sort_values(
        "customer_id", kind="stable", ignore_index=True
    )
    ids = sorted(customers["customer_id"])
    queries = (
        ("orders", analytics_queries.ORDERS_OF),
        ("lines", analytics_queries.LINES_OF),
        ("interactions", analytics_queries.INTERACTIONS_OF),
        ("ties", analytics_queries.TIES_OF),
    )
    collected: dict[str, dict[str, list[Any]]] = {name: {} for name, _ in queries}
    # The four statements of a batch run at once, and READ_AHEAD batches are under way at a
    # time: the store works on one batch while this process converts the rows of another.
    under_way = asyncio.Semaphore(READ_AHEAD)

    async def batch(start: int) -> list[dict[str, list[Any]]]:
        params = {"ids": ids[start : start + batch_size], "before": cutoff}
        shared = {
            "customer_id": customer_ids,
            "source": customer_ids,
            "target": customer_ids,
            "transaction_id": {},
            "product_id": kinds,
            "type": kinds,
            "channel": kinds,
        }
        async with under_way:
            return await asyncio.gather(
                *(store.read_columns(query, params, shared=shared) for _, query in queries)
            )

    for results in await asyncio.gather(*map(batch, range(0, len(ids), batch_size))):
        for (name, _), columns in zip(queries, results, strict=True):
            for column, values in columns.items():
                collected[name].setdefault(column, []).extend(values)
    orders = _frame(collected["orders"], frames.ORDERS, ("at",))
    categories = await store.read_columns(analytics_queries.PRODUCT_CATEGORIES)
    # Rows in an order of their own, not the store's: Neo4j and FalkorDB return the same graph's
    # rows in different orders, and the models (KMeans, communities, samples, ties broken by
    # position) then gave other segments and communities for the same business.
    return Tables(
        customers=customers.set_index("customer_id", drop=False).rename_axis(None),
        orders=_sorted(orders, "transaction_id"),
        lines=_sorted(
            _lines(collected["lines"], orders, categories), "transaction_id", "product_id"
        ),
        interactions=_sorted(
            _frame(collected["interactions"], frames.INTERACTIONS, ("at",)), "interaction_id"
        ),
        ties=_sorted(_frame(collected["ties"], frames.TIES), "source", "target", "type"),
    )


def _sorted(frame: pd.DataFrame, *keys: str) -> pd.DataFrame:
    """`frame` in the order of `keys` (each row's keys are unique), whatever order the store
    returned its rows in."""
    return frame.sort_values(list(keys), kind="stable", ignore_index=True)


def _lines(
    read: dict[str, list[Any]], orders: pd.DataFrame, categories: dict[str, list[Any]]
) -> pd.DataFrame:
    """The lines of `frames.LINES`: each line read with its order and product ids only, the
    customer and time joined from its order, the category from its product."""
    if not read.get("transaction_id"):
        return frames.empty(frames.LINES).assign(at=pd.Series(dtype="datetime64[ns, UTC]"))
    # Joined by position: a merge validated many-to-one sorted the million ids it checked.
    placed = pd.Index(orders["transaction_id"].to_numpy(dtype=object))
    if placed.has_duplicates:
        raise ValueError("the graph holds two transactions with the same id")
    lines = pd.DataFrame(read)
    order_of = placed.get_indexer(lines["transaction_id"].to_numpy(dtype=object))
    lines["customer_id"] = orders["customer_id"].array.take(order_of, allow_fill=True)
    lines["at"] = orders["at"].array.take(order_of, allow_fill=True)
    category_of = dict(zip(categories["product_id"], categories["category"], strict=True))
    products = pd.Index(list(category_of), dtype=object)
    product_of = products.get_indexer(lines["product_id"].to_numpy(dtype=object))
    category = pd.Series(list(category_of.values()), dtype=object).array
    lines["category"] = category.take(product_of, allow_fill=True)
    return lines[list(frames.LINES)]
