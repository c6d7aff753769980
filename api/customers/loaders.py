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

from graph import catalog
from graph import customers as queries
from graph.store import GraphStore, Row


def _rows_loader(
    store: GraphStore, query: str, params: dict[str, Any] | None = None
) -> DataLoader[str, list[Row]]:
    async def load(ids: list[str]) -> list[list[Row]]:
        grouped = await queries.by_customer(store, query, ids, **(params or {}))
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
            grouped = await queries.by_customer(store, query, ids, **params)
            for i in ids:
                results[(i, *args)] = grouped.get(i, [])
        return [results[key] for key in keys]

    return DataLoader(load_fn=load)


class CustomerLoaders:
    """The loaders of one request, each made on its first use: a request uses few of them."""

    def __init__(self, store: GraphStore) -> None:
        self._store = store
        self._views: dict[queries.CustomerView, DataLoader[str, list[Row]]] = {}

    @cached_property
    def stats(self) -> DataLoader[str, list[Row]]:
        return _rows_loader(self._store, queries.STATS_BY_CUSTOMER)

    @cached_property
    def products_bought(self) -> DataLoader[str, list[Row]]:
        return _rows_loader(self._store, queries.PRODUCTS_BOUGHT_BY_CUSTOMER)

    @cached_property
    def ties(self) -> DataLoader[str, list[Row]]:
        return _rows_loader(self._store, queries.TIES_BY_CUSTOMER)

    @cached_property
    def segments(self) -> DataLoader[str, list[Row]]:
        return _rows_loader(self._store, queries.SEGMENTS_BY_CUSTOMER)

    @cached_property
    def lines(self) -> DataLoader[str, list[Row]]:
        return _rows_loader(self._store, queries.LINES_BY_TRANSACTION)

    @cached_property
    def products(self) -> DataLoader[str, list[Row]]:
        return _rows_loader(self._store, catalog.PRODUCTS_BY_ID)

    @cached_property
    def transactions(self) -> DataLoader[tuple[Hashable, ...], list[Row]]:
        return _param_loader(self._store, queries.TRANSACTIONS_BY_CUSTOMER, ("first", "from", "to"))

    @cached_property
    def transactions_with_lines(self) -> DataLoader[tuple[Hashable, ...], list[Row]]:
        return _param_loader(
            self._store, queries.TRANSACTIONS_WITH_LINES_BY_CUSTOMER, ("first", "from", "to")
        )

    @cached_property
    def interactions(self) -> DataLoader[tuple[Hashable, ...], list[Row]]:
        return _param_loader(
            self._store, queries.INTERACTIONS_BY_CUSTOMER, ("first", "types", "from", "to")
        )

    def customer_view(self, view: queries.CustomerView) -> DataLoader[str, list[Row]]:
        """Profiles with the parts of the 360 view `view` asks for (`customer_view_query`): one
        statement for the customers asked for with the same view."""
        if view not in self._views:
            self._views[view] = _rows_loader(self._store, *queries.customer_view_query(view))
        return self._views[view]
