"""DataLoaders of the customer 360 view, created fresh for each request.

Each loader turns all the keys asked for while resolving one level of a query into one batched
statement, so a query costs a bounded number of store round trips whatever the page size.
Loaders of pages (orders, contacts, ties, products bought) key on the customer id and the page
(its cursor, size and filters), and send one statement per distinct page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from functools import cached_property
from typing import Any

from strawberry.dataloader import DataLoader

from crm_graph.api.execution import RequestLoader
from crm_graph.graph import catalog, customer_reads
from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.store import GraphStore, Row


def _rows_loader(
    store: GraphStore, query: str, params: dict[str, Any] | None = None
) -> DataLoader[str, list[Row]]:
    async def load(ids: list[str]) -> list[list[Row]]:
        grouped = await customer_reads.by_customer(store, query, ids, **(params or {}))
        return [grouped.get(i, []) for i in ids]

    return RequestLoader(load_fn=load)


def _page_loader(
    store: GraphStore,
    query: str,
    params_of: Callable[[Any], dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> DataLoader[tuple[str, Hashable], list[Row]]:
    """Keys are (id, page): one statement per distinct page (its `params_of`, with `extra`)."""

    async def load(keys: list[tuple[str, Hashable]]) -> list[list[Row]]:
        by_page: dict[Hashable, list[str]] = defaultdict(list)
        for customer_id, page in keys:
            by_page[page].append(customer_id)
        results: dict[tuple[str, Hashable], list[Row]] = {}
        for page, ids in by_page.items():
            params = {**params_of(page), **(extra or {})}
            grouped = await customer_reads.by_customer(store, query, ids, **params)
            for i in ids:
                results[(i, page)] = grouped.get(i, [])
        return [results[key] for key in keys]

    return RequestLoader(load_fn=load)


def _by_id(query: str) -> cached_property[DataLoader[str, list[Row]]]:
    """A loader of `query`'s rows by id, made on its first use in a request."""
    return cached_property(lambda loaders: _rows_loader(loaders._store, query))


def _by_page(
    query: str, params_of: Callable[[Any], dict[str, Any]] = lambda page: page.params()
) -> cached_property[DataLoader[tuple[str, Hashable], list[Row]]]:
    """A loader of `query`'s rows by (id, page), made on its first use."""
    return cached_property(lambda loaders: _page_loader(loaders._store, query, params_of))


class CustomerLoaders:
    """The loaders of one request, each made on its first use: a request uses few of them."""

    stats = _by_id(customer_reads.STATS_BY_CUSTOMER)
    products_bought = _by_page(
        customer_reads.PRODUCTS_BOUGHT_BY_CUSTOMER, lambda page: page.params("pb")
    )
    segments = _by_id(customer_reads.SEGMENTS_BY_CUSTOMER)
    lines = _by_id(customer_reads.LINES_BY_TRANSACTION)
    products = _by_id(catalog.PRODUCTS_BY_ID)
    transactions = _by_page(customer_reads.TRANSACTIONS_BY_CUSTOMER)
    transactions_with_lines = _by_page(customer_reads.TRANSACTIONS_WITH_LINES_BY_CUSTOMER)
    interactions = _by_page(customer_reads.INTERACTIONS_BY_CUSTOMER)

    def __init__(self, store: GraphStore, scope: CustomerScope = EVERYONE) -> None:
        self._store = store
        self._scope = scope
        self._views: dict[customer_reads.CustomerView, DataLoader[str, list[Row]]] = {}

    @cached_property
    def ties(self) -> DataLoader[tuple[str, Hashable], list[Row]]:
        """Pages of ties (by `TiePage`) to the customers in the caller's scope only."""
        return _page_loader(
            self._store,
            customer_reads.ties_by_customer(self._scope),
            lambda page: page.params(),
            self._scope.params,
        )

    def customer_view(self, view: customer_reads.CustomerView) -> DataLoader[str, list[Row]]:
        """Profiles with the parts of the 360 view `view` asks for (`customer_view_query`): one
        statement for the customers asked for with the same view."""
        if view not in self._views:
            self._views[view] = _rows_loader(
                self._store, *customer_reads.customer_view_query(view, self._scope)
            )
        return self._views[view]
