"""The pages of a customer's relations: their orderings (what their cursors are made for), and
their GraphQL arguments checked (`api.pagination.page_request`) and turned into what the
statements of `graph.customer_reads` take. Shared by the resolvers (`types`) and the 360 planner
(`planner`), which must build the same page from the same arguments for the part that came with
the profile to be used."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from crm_graph.api.pagination import PageRequest, page_request
from crm_graph.api.scalars import to_epoch_ms
from crm_graph.graph.customer_reads import InteractionPage, TiePage, TransactionPage
from crm_graph.graph.pages import KeysetPage

TRANSACTION_ORDERING = "TRANSACTIONS"
INTERACTION_ORDERING = "INTERACTIONS"
TIE_ORDERING = "SOCIAL_TIES"
PURCHASE_ORDERING = "PRODUCTS_BOUGHT"
LINE_ORDERING = "LINES"
BUYER_ORDERING = "BUYERS"
"""What the cursors of a customer's orders, contacts, ties and products bought, of an order's
lines and of a product's buyers are made for (`api.pagination`)."""


def keyset(request: PageRequest) -> KeysetPage:
    """The page the store cuts (`graph.pages`) for a page's checked arguments."""
    return KeysetPage(request.size, request.backwards, request.cursor)


def _kinds(types: Sequence[enum.Enum] | None) -> tuple[str, ...] | None:
    return tuple(sorted(str(t.value) for t in types)) if types else None


def transaction_page(
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    lines: bool,
) -> tuple[PageRequest, TransactionPage]:
    """`Customer.transactions`' arguments, checked, and as the statement takes them."""
    request = page_request("transactions", TRANSACTION_ORDERING, first, after, last, before)
    return request, TransactionPage(keyset(request), to_epoch_ms(since), to_epoch_ms(until), lines)


def interaction_page(
    types: Sequence[enum.Enum] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[PageRequest, InteractionPage]:
    """`Customer.interactions`' arguments, checked, and as the statement takes them."""
    request = page_request("interactions", INTERACTION_ORDERING, first, after, last, before)
    page = InteractionPage(keyset(request), _kinds(types), to_epoch_ms(since), to_epoch_ms(until))
    return request, page


def tie_page(
    types: Sequence[enum.Enum] | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> tuple[PageRequest, TiePage]:
    """`Customer.socialTies`' arguments, checked, and as the statement takes them (no types:
    every type)."""
    request = page_request("socialTies", TIE_ORDERING, first, after, last, before)
    return request, TiePage(keyset(request), _kinds(types))
