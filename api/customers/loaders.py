"""DataLoaders of the customer 360 view, created fresh for each request.

Each loader turns all the keys asked for while resolving one level of a query into one batched
statement, so a query costs a bounded number of store round trips whatever the page size.
Loaders whose statements take arguments (how many transactions, which interaction types) key
on the customer id and those arguments, and send one statement per distinct set of arguments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader

from crm_graph.graph import catalog, customer_reads
from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.store import GraphStore, Row


def _rows_loader(
    store: GraphStore, query: str, params: dict[str, Any] | None = None
) -> DataLoader[str, list[Row]]:
    async def load(ids: list[str]) -> list[list[Row]]:
        grouped = await customer_reads.by_customer(store, query, ids, **(params or {}))
        return [grouped.get(i, []) for i in ids]

    return DataLoader(load_fn=load)


def _param_loader(store: GraphStore, query: str, names: Sequence[str]
                  ) -> DataLoader[tuple[Hashable, ...], list[Row]]:  # fmt: skip
    """Keys are (id, *arguments): one statement per distinct arguments."""

    async def load(keys: list[tuple[Hashable, ...]]) -> list[list[Row]]:
        by_args: dict[tuple[Hashable, ...], list[str]] = defaultdict(list)
        for key in keys:
            by_args[key[1:]].append(str(key[0]))
        results: dict[tuple[Hashable, ...], list[Row]] = {}
        for args, ids in by_args.items():
            params: dict[str, Any] = {
                name: list(v) if isinstance(v, tuple) else v
                for name, v in zip(names, args, strict=True)
            }
            grouped = await customer_reads.by_customer(store, query, ids, **params)
            for i in ids:
                results[(i, *args)] = grouped.get(i, [])
        return [results[key] for key in keys]

    return DataLoader(load_fn=load)


def _by_id(query: str) -> cached_property[DataLoader[str, list[Row]]]:
    """A loader of `query`'s rows by id, made on its first use in a request."""
    return cached_property(lambda loaders: _rows_loader(loaders._store, query))


def _by_id_and(
    query: str, *names: str
) -> cached_property[DataLoader[tuple[Hashable, ...], list[Row]]]:
    """A loader of `query`'s rows by (id, arguments `names`), made on its first use."""
    return cached_property(lambda loaders: _param_loader(loaders._store, query, names))


class CustomerLoaders:
    """The loaders of one request, each made on its first use: a request uses few of them."""

    stats = _by_id(customer_reads.STATS_BY_CUSTOMER)
    products_bought = _by_id(customer_reads.PRODUCTS_BOUGHT_BY_CUSTOMER)
    segments = _by_id(customer_reads.SEGMENTS_BY_CUSTOMER)
    lines = _by_id(customer_reads.LINES_BY_TRANSACTION)
    products = _by_id(catalog.PRODUCTS_BY_ID)
    transactions = _by_id_and(customer_reads.TRANSACTIONS_BY_CUSTOMER, "first", "from", "to")
    transactions_with_lines = _by_id_and(
        customer_reads.TRANSACTIONS_WITH_LINES_BY_CUSTOMER, "first", "from", "to"
    )
    interactions = _by_id_and(
        customer_reads.INTERACTIONS_BY_CUSTOMER, "first", "types", "from", "to"
    )

    def __init__(self, store: GraphStore, scope: CustomerScope = EVERYONE) -> None:
        self._store = store
        self._scope = scope
        self._views: dict[customer_reads.CustomerView, DataLoader[str, list[Row]]] = {}

    @cached_property
    def ties(self) -> DataLoader[str, list[Row]]:
        """Ties to the customers in the caller's scope only."""
        return _rows_loader(
            self._store, customer_reads.ties_by_customer(self._scope), self._scope.params
        )

    def customer_view(self, view: customer_reads.CustomerView) -> DataLoader[str, list[Row]]:
        """Profiles with the parts of the 360 view `view` asks for (`customer_view_query`): one
        statement for the customers asked for with the same view."""
        if view not in self._views:
            self._views[view] = _rows_loader(
                self._store, *customer_reads.customer_view_query(view, self._scope)
            )
        return self._views[view]
