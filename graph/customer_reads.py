"""Customer reads for the API: the 360 view in batches (one statement per kind of data, for any
number of customers), pages of customers with filters and stable cursors, search."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.filters import TIES, FilterBuilder
from crm_graph.graph.money import exact_sums, money_sum
from crm_graph.graph.pages import KeysetPage, keyset_slice
from crm_graph.graph.store import GraphStore, Row

# -- the orderings of a customer's relations, as `keyset_slice` cuts pages out of them ---------

_TX_PAGE = keyset_slice("txFound", "x.at", "x.id", "tx", descending=True)
"""Orders newest first (`at`, then id, descending); of nodes or of their property maps."""
_IX_PAGE = keyset_slice("ixFound", "x.at", "x.id", "ix", descending=True)
"""Contacts newest first, as orders."""
_TIE_PAGE = keyset_slice("tieFound", "x.type", "x.cursorId", "tie", descending=False)
"""Ties by type, then the other customer's id (`cursorId`: the id and the tie's direction, so
that two ties of one type between the same customers, one each way, have their own place)."""
_BOUGHT_PAGE = keyset_slice(
    "pbFound", "x.quantity", "x.product.id", "pb", descending=True, ident_descending=False
)
"""Products bought, most units first, then by product id."""

TIE_CURSOR_ID = "o.id + CASE WHEN startNode(r) = c THEN ' >' ELSE ' <' END"
"""A tie's id in its ordering (of the tie `r` from `c` to `o`): the other customer's id, then
its direction (a space sorts before any id character, so ties stay in customer id order)."""

# -- the 360 view, batched by customer id ------------------------------------------------------

CUSTOMERS_BY_ID = (
    "UNWIND $ids AS id MATCH (c:Customer {id: id}) RETURN id, properties(c) AS customer"
)


def customers_by_id(scope: CustomerScope = EVERYONE) -> str:
    """`CUSTOMERS_BY_ID` of the customers in `scope` (its `params` go with `$ids`)."""
    if scope.everyone:
        return CUSTOMERS_BY_ID
    return (
        "UNWIND $ids AS id MATCH (c:Customer {id: id})\n"
        f"{scope.keep('c', 'id, c')}RETURN id, properties(c) AS customer"
    )


_ORDER_FIGURES = exact_sums("""
OPTIONAL MATCH (c)-[:PLACED]->(t:Transaction)
WITH id, c, count(t) AS orders, sum(t.total) AS spend, min(t.at) AS first, max(t.at) AS last
""")

STATS_BY_CUSTOMER = f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})
{_ORDER_FIGURES}
RETURN id, orders, spend, first, last
"""

TRANSACTIONS_BY_CUSTOMER = f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})-[:PLACED]->(t:Transaction)
WITH id, t WHERE ($from IS NULL OR t.at >= $from) AND ($to IS NULL OR t.at < $to)
WITH id, t ORDER BY t.at DESC, t.id DESC
WITH id, collect(properties(t)) AS txFound
RETURN id, {_TX_PAGE} AS transactions, size(txFound) AS total
"""
"""A page of each customer's orders (`KeysetPage.params("tx")`, `$from`, `$to`): one row per
customer with orders in the range, `total` counting them all."""

TRANSACTIONS_WITH_LINES_BY_CUSTOMER = f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})-[:PLACED]->(t:Transaction)
WITH id, t WHERE ($from IS NULL OR t.at >= $from) AND ($to IS NULL OR t.at < $to)
WITH id, t ORDER BY t.at DESC, t.id DESC
WITH id, collect(t) AS txFound
WITH id, size(txFound) AS total, {_TX_PAGE} AS page
UNWIND (CASE WHEN size(page) = 0 THEN [null] ELSE page END) AS t
WITH id, total, t, CASE WHEN t IS NULL THEN null ELSE {{transaction: properties(t),
       lines: [(t)-[lx:CONTAINS]->(px:Product) | {{quantity: lx.quantity,
               unitPrice: lx.unitPrice, amount: lx.amount, product: properties(px)}}]}} END AS tx
ORDER BY t.at DESC, t.id DESC
WITH id, total, collect(tx) AS transactions
RETURN id, transactions, total
"""
"""The same page of orders with their line items (maps of `transaction` and `lines`), in one
statement: used when the query asks for the lines, so that a 360 view costs one round trip
less."""

LINES_BY_TRANSACTION = """
UNWIND $ids AS id
MATCH (t:Transaction {id: id})-[e:CONTAINS]->(p:Product)
RETURN id, e.quantity AS quantity, e.unitPrice AS unitPrice, e.amount AS amount,
       properties(p) AS product
ORDER BY id, product.id
"""

INTERACTIONS_BY_CUSTOMER = f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})-[:HAD]->(i:Interaction)
WITH id, i
WHERE ($types IS NULL OR i.type IN $types) AND ($from IS NULL OR i.at >= $from)
  AND ($to IS NULL OR i.at < $to)
WITH id, i ORDER BY i.at DESC, i.id DESC
WITH id, collect(properties(i)) AS ixFound
RETURN id, {_IX_PAGE} AS interactions, size(ixFound) AS total
"""
"""A page of each customer's contacts (`KeysetPage.params("ix")`, `$types`, `$from`, `$to`)."""

PRODUCTS_BOUGHT_BY_CUSTOMER = exact_sums(f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})-[:PLACED]->(t:Transaction)-[e:CONTAINS]->(p:Product)
WITH id, p, sum(e.quantity) AS quantity, count(DISTINCT t) AS orders, sum(e.amount) AS spend
WITH id, p, quantity, orders, spend ORDER BY quantity DESC, p.id
WITH id, collect({{product: properties(p), quantity: quantity, orders: orders, spend: spend}})
     AS pbFound
RETURN id, {_BOUGHT_PAGE} AS products, size(pbFound) AS total
""")
"""A page of the products each customer bought (`KeysetPage.params("pb")`), most units first."""

TIES_BY_CUSTOMER = f"""
UNWIND $ids AS id
MATCH (c:Customer {{id: id}})-[r:{TIES}]-(o:Customer)
WITH id, c, r, o WHERE $tieTypes IS NULL OR type(r) IN $tieTypes
WITH id, {{type: type(r), outgoing: startNode(r) = c, since: r.since, weight: r.weight,
     customer: properties(o), cursorId: {TIE_CURSOR_ID}}} AS tie
WITH id, tie ORDER BY tie.type, tie.cursorId
WITH id, collect(tie) AS tieFound
RETURN id, {_TIE_PAGE} AS ties, size(tieFound) AS total
"""
"""A page of each customer's ties of the types `$tieTypes` (null: all), in both directions
(`KeysetPage.params("tie")`), by type then the other customer's id."""


def ties_by_customer(scope: CustomerScope = EVERYONE) -> str:
    """`TIES_BY_CUSTOMER` to the customers in `scope` only: a tie to a customer outside it is
    not there for the key (nor in `total`)."""
    if scope.everyone:
        return TIES_BY_CUSTOMER
    return TIES_BY_CUSTOMER.replace(
        "-(o:Customer)\n", f"-(o:Customer)\n{scope.keep('o', 'id, c, r, o')}"
    )


SEGMENTS_BY_CUSTOMER = """
UNWIND $ids AS id
MATCH (c:Customer {id: id})-[m:IN_SEGMENT]->(s:Segment)
RETURN id, properties(s) AS segment
ORDER BY id, segment.id
"""


# -- the 360 view of customers asked for by id: its parts in one statement -----------------------


@dataclass(frozen=True)
class TransactionPage:
    """`TRANSACTIONS_BY_CUSTOMER`'s arguments (`lines`: `TRANSACTIONS_WITH_LINES_BY_CUSTOMER`)."""

    page: KeysetPage
    since: int | None = None
    until: int | None = None
    lines: bool = False

    def params(self) -> dict[str, Any]:
        return {**self.page.params("tx"), "from": self.since, "to": self.until}


@dataclass(frozen=True)
class InteractionPage:
    """`INTERACTIONS_BY_CUSTOMER`'s arguments (`types` sorted)."""

    page: KeysetPage
    types: tuple[str, ...] | None = None
    since: int | None = None
    until: int | None = None

    def params(self) -> dict[str, Any]:
        types = list(self.types) if self.types is not None else None
        return {**self.page.params("ix"), "types": types, "from": self.since, "to": self.until}


@dataclass(frozen=True)
class TiePage:
    """`TIES_BY_CUSTOMER`'s arguments (`types` sorted; None: every type)."""

    page: KeysetPage
    types: tuple[str, ...] | None = None

    def params(self) -> dict[str, Any]:
        types = list(self.types) if self.types is not None else None
        return {**self.page.params("tie"), "tieTypes": types}


@dataclass(frozen=True)
class CustomerView:
    """What comes with the profile of customers read by id: the order figures, a page of orders,
    a page of interactions, the social ties. Each part is what its own batched statement reads
    (`STATS_BY_CUSTOMER`, `TRANSACTIONS_BY_CUSTOMER`, `INTERACTIONS_BY_CUSTOMER`,
    `TIES_BY_CUSTOMER`), for one round trip instead of one each."""

    figures: bool = False
    transactions: TransactionPage | None = None
    interactions: InteractionPage | None = None
    ties: TiePage | None = None
    transaction_properties: tuple[str, ...] | None = None
    product_properties: tuple[str, ...] | None = None
    interaction_properties: tuple[str, ...] | None = None
    tie_customer_properties: tuple[str, ...] | None = None
    """The properties read of the orders, of their lines' products, of the interactions and of
    the ties' other customers (sorted); None: all of them (`properties(x)`). The profile itself
    always comes whole."""


_VIEW_TRANSACTIONS = """
OPTIONAL MATCH (c)-[:PLACED]->(vt:Transaction){where}
WITH {carried}, vt ORDER BY vt.at DESC, vt.id DESC
WITH {carried}, {figures}collect({transaction}) AS txFound
WITH {kept}, {page} AS transactions, size(txFound) AS txTotal
"""

_VIEW_TRANSACTIONS_WITH_LINES = """
OPTIONAL MATCH (c)-[:PLACED]->(vt:Transaction){where}
WITH {carried}, vt ORDER BY vt.at DESC, vt.id DESC
WITH {carried}, {figures}collect(vt) AS txFound
WITH {kept}, {page} AS txPage, size(txFound) AS txTotal
UNWIND (CASE WHEN size(txPage) = 0 THEN [null] ELSE txPage END) AS vt
WITH {kept}, txTotal, vt,
     CASE WHEN vt IS NULL THEN null ELSE {{transaction: {transaction},
       lines: [(vt)-[vl:CONTAINS]->(vp:Product) | {{quantity: vl.quantity,
               unitPrice: vl.unitPrice, amount: vl.amount, product: {product}}}]}} END AS vtx
ORDER BY vt.at DESC, vt.id DESC
WITH {kept}, txTotal, collect(vtx) AS transactions
"""

_TRANSACTION_DATES = (
    "\nWHERE ($txFrom IS NULL OR vt.at >= $txFrom) AND ($txTo IS NULL OR vt.at < $txTo)"
)
"""The page's date range, when it has one."""

_FIGURES_OF_PAGE = exact_sums(
    "count(vt) AS orders, sum(vt.total) AS spend, min(vt.at) AS first, max(vt.at) AS last, "
)
"""`_ORDER_FIGURES`' figures, from the orders the page is taken from: when the page has no
date range, those are all of them, and one pass over the orders serves both (0.06 ms less per
360 on the 100k bench store than two)."""


_VIEW_INTERACTIONS = """
OPTIONAL MATCH (c)-[:HAD]->(vi:Interaction)
WHERE ($ixTypes IS NULL OR vi.type IN $ixTypes) AND ($ixFrom IS NULL OR vi.at >= $ixFrom)
  AND ($ixTo IS NULL OR vi.at < $ixTo)
WITH {carried}, vi ORDER BY vi.at DESC, vi.id DESC
WITH {carried}, collect({interaction}) AS ixFound
WITH {carried}, {page} AS interactions, size(ixFound) AS ixTotal
"""

_VIEW_TIES = f"""
OPTIONAL MATCH (c)-[vr:{TIES}]-(vo:Customer)
WITH {{carried}}, CASE WHEN vr IS NULL OR NOT ($tieTypes IS NULL OR type(vr) IN $tieTypes)
     THEN null ELSE {{{{type: type(vr), outgoing: startNode(vr) = c, since: vr.since,
     weight: vr.weight, customer: {{customer}},
     cursorId: {TIE_CURSOR_ID.replace("o.", "vo.").replace("(r)", "(vr)")}}}}} END AS vtie
WITH {{carried}}, vtie ORDER BY vtie.type, vtie.cursorId
WITH {{carried}}, collect(vtie) AS tieFound
WITH {{carried}}, {{page}} AS ties, size(tieFound) AS tieTotal
"""


_PROPERTY_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def node_properties(node: str, keys: Iterable[str] | None, *, optional: bool = False) -> str:
    """The expression reading the properties `keys` of the node variable `node` as a map (a map
    projection, keys sorted: the same keys give the same text, and the same cached plan), or all
    of them (`properties(node)`) when `keys` is None. `optional`: the node may be null (an
    OPTIONAL MATCH without a match), which FalkorDB 4.16 projects to a map of nulls, not to
    null as `properties` does: then null stays null."""
    if keys is None:
        return f"properties({node})"
    chosen = sorted(set(keys))
    if not chosen or not all(_PROPERTY_KEY.fullmatch(key) for key in chosen):
        raise ValueError(f"not property keys to project: {chosen!r}")
    projection = f"{node} {{{', '.join('.' + key for key in chosen)}}}"
    return f"CASE WHEN {node} IS NULL THEN null ELSE {projection} END" if optional else projection


def customer_view_query(
    view: CustomerView, scope: CustomerScope = EVERYONE
) -> tuple[str, dict[str, Any]]:
    """The statement reading the profiles of customers `$ids` with the parts of `view`, and its
    parameters other than `ids`: one row per customer found, with the columns `id`, `customer`
    (its properties), then per part asked for: `orders`, `spend`, `first`, `last`
    (`STATS_BY_CUSTOMER`'s); `transactions` (the page, newest first: the orders' properties, or
    with `lines` maps of `transaction` and `lines` as `TRANSACTIONS_WITH_LINES_BY_CUSTOMER`
    returns them) and `txTotal`; `interactions` (the page, newest first) and `ixTotal`; `ties`
    (the page, as `TIES_BY_CUSTOMER` returns it) and `tieTotal`. Each page holds up to one item
    more than asked (`KeysetPage.cut`); each total counts every item of its part. The orders,
    products, interactions and ties' customers hold
    the properties `view` names for them (`node_properties`), each a key even where the node
    has no such property (its value then null).

    Each part is matched, ordered and collected before the next (one row per customer between
    them, never a product of two parts). The figures and a page of orders without a date range
    come from one pass over the orders. Ties are read with OPTIONAL MATCH, never a pattern
    comprehension: FalkorDB 4.16 names a tie of a type created after the plan was cached with
    the wrong type in a cached pattern comprehension (tests/graph/test_customers.py).

    `scope`: only customers in it are found, and only ties to customers in it come back."""
    query, params = _view_statement(view, scope.shape)
    return query, {**params, **scope.params}


@functools.lru_cache(maxsize=512)
def _view_statement(view: CustomerView, scope: CustomerScope) -> tuple[str, dict[str, Any]]:
    """`customer_view_query`, built once per view and shape of scope (the caller gets a copy of
    the parameters)."""
    lines = ["UNWIND $ids AS id", "MATCH (c:Customer {id: id})"]
    if not scope.everyone:
        lines.append(scope.keep("c", "id, c").strip())
    carried = ["id", "c"]
    params: dict[str, Any] = {}

    def add(part: str, column: str, **nodes: str) -> None:
        lines.append(part.format(carried=", ".join(carried), **nodes).strip())
        carried.append(column)

    page = view.transactions
    one_pass = view.figures and page is not None and page.since is None and page.until is None
    if view.figures and not one_pass:
        lines.append(_ORDER_FIGURES.strip())
        carried += ["orders", "spend", "first", "last"]
    if page is not None:
        # with the lines, each order is read under CASE WHEN vt IS NULL already
        transaction = node_properties("vt", view.transaction_properties, optional=not page.lines)
        product = node_properties("vp", view.product_properties)
        before = ", ".join(carried)
        if one_pass:
            carried += ["orders", "spend", "first", "last"]
        lines.append(
            (_VIEW_TRANSACTIONS_WITH_LINES if page.lines else _VIEW_TRANSACTIONS)
            .format(
                carried=before,
                kept=", ".join(carried),
                where="" if one_pass else _TRANSACTION_DATES,
                figures=_FIGURES_OF_PAGE if one_pass else "",
                transaction=transaction,
                product=product,
                page=_TX_PAGE,
            )
            .strip()
        )
        carried += ["transactions", "txTotal"]
        params.update(page.page.params("tx"))
        if not one_pass:
            params.update(txFrom=page.since, txTo=page.until)
    if (contacts := view.interactions) is not None:
        interaction = node_properties("vi", view.interaction_properties, optional=True)
        add(_VIEW_INTERACTIONS, "interactions", interaction=interaction, page=_IX_PAGE)
        carried.append("ixTotal")
        types = list(contacts.types) if contacts.types is not None else None
        params.update(contacts.page.params("ix"), ixTypes=types, ixFrom=contacts.since,
                      ixTo=contacts.until)  # fmt: skip
    if (ties_page := view.ties) is not None:
        ties = _VIEW_TIES
        if not scope.everyone:
            # a tie to a customer out of scope is no tie: null, as when there is none
            out_of_scope = f"vr IS NULL OR NOT {scope.expression('vo')}"
            ties = ties.replace("CASE WHEN vr IS NULL OR", f"CASE WHEN {out_of_scope} OR")
        add(ties, "ties", customer=node_properties("vo", view.tie_customer_properties),
            page=_TIE_PAGE)  # fmt: skip
        carried.append("tieTotal")
        params.update(ties_page.params())
    columns = ["properties(c) AS customer" if name == "c" else name for name in carried]
    lines.append("RETURN " + ", ".join(columns))
    return "\n".join(lines), params


async def by_customer(
    store: GraphStore, query: str, ids: Sequence[str], **params: Any
) -> dict[str, list[Row]]:
    """Run a batched statement for `ids`, and group its rows by customer id."""
    grouped: dict[str, list[Row]] = {i: [] for i in ids}
    for row in await store.read(query, {"ids": list(dict.fromkeys(ids)), **params}):
        grouped.setdefault(row["id"], []).append(row)
    return grouped


# -- pages of customers ------------------------------------------------------------------------

SORT_KEYS = {
    "ID": ("c.id", None),
    "NAME": ("coalesce(c.name, '')", None),
    "COUNTRY": ("coalesce(c.country, '')", None),
    "SIGNUP_AT": ("coalesce(c.signupAt, -9007199254740991)", None),
    "TOTAL_SPEND": (
        "sortSpend",
        "OPTIONAL MATCH (c)-[:PLACED]->(sortT:Transaction) "
        f"RETURN {money_sum('sortT.total')} AS sortSpend",
    ),
}
"""Sort key expression per order, and the subquery computing it if it is not a property."""


@dataclass(frozen=True)
class CustomerPage:
    customers: list[dict[str, Any]]
    sort_keys: list[Any]
    has_next: bool
    """Whether more customers come after the page (read backwards: before it)."""


def _page_query(
    spec: Mapping[str, Any] | None,
    order: str,
    descending: bool,
    after: tuple[Any, str] | None,
    limit: int,
    scope: CustomerScope = EVERYONE,
) -> tuple[str, dict[str, Any]]:
    builder = FilterBuilder(scope)
    fragment = builder.build(spec, "c")
    key_expr, key_call = SORT_KEYS[order]
    lines = ["MATCH (c:Customer)", *_scoped("c", scope), *fragment.calls]
    if key_call:
        lines.append(f"CALL {{ WITH c {key_call} }}")
    carried = ", ".join(["c", *fragment.carried])
    lines.append(f"WITH {carried}, {key_expr} AS sortKey WHERE {fragment.where}")
    params = {**builder.params, **scope.params}
    if after is not None:
        comparison = "<" if descending else ">"
        lines.append(
            f"AND (sortKey {comparison} $afterKey "
            f"OR (sortKey = $afterKey AND c.id {comparison} $afterId))"
        )
        params["afterKey"], params["afterId"] = after
    direction = "DESC" if descending else "ASC"
    lines.append(f"WITH c, sortKey ORDER BY sortKey {direction}, c.id {direction} LIMIT $limit")
    lines.append("RETURN properties(c) AS customer, sortKey")
    params["limit"] = limit
    return "\n".join(lines), params


async def customer_page(
    store: GraphStore,
    spec: Mapping[str, Any] | None,
    *,
    order: str = "ID",
    descending: bool = False,
    after: tuple[Any, str] | None = None,
    first: int = 20,
    backwards: bool = False,
    scope: CustomerScope = EVERYONE,
) -> CustomerPage:
    """One page of customers in `scope` matching `spec`, ordered by `order` then id (so ties
    are stable), starting after the (sort key, id) cursor `after`. `backwards`: the `first`
    customers that come before `after` (or the last ones) instead, still in the page's order;
    `has_next` then says whether more come before them. One statement either way (read in the
    opposite order)."""
    query, params = _page_query(spec, order, descending != backwards, after, first + 1, scope)
    rows = await store.read(query, params)
    kept = rows[:first]
    if backwards:
        kept.reverse()
    return CustomerPage(
        [r["customer"] for r in kept],
        [r["sortKey"] for r in kept],
        len(rows) > first,
    )


def _scoped(var: str, scope: CustomerScope) -> list[str]:
    """A WITH ... WHERE keeping the customers of `var` in `scope` (nothing for everyone)."""
    return [] if scope.everyone else [scope.keep(var, var).strip()]


async def count_customers(
    store: GraphStore, spec: Mapping[str, Any] | None, scope: CustomerScope = EVERYONE
) -> int:
    builder = FilterBuilder(scope)
    fragment = builder.build(spec, "c")
    carried = ", ".join(["c", *fragment.carried])
    query = "\n".join(
        [
            "MATCH (c:Customer)",
            *_scoped("c", scope),
            *fragment.calls,
            f"WITH {carried} WHERE {fragment.where}",
            "RETURN count(c) AS n",
        ]
    )
    rows = await store.read(query, {**builder.params, **scope.params})
    return int(rows[0]["n"]) if rows else 0


SEARCH_CUSTOMERS = """
MATCH (c:Customer)
{scope}WITH c WHERE (toLower(c.name) CONTAINS $text
   OR ($personal AND (toLower(c.email) CONTAINS $text
                      OR (size($digits) >= 4 AND c.phone CONTAINS $digits))))
WITH c, coalesce(c.name, '') AS sortKey
"""
"""The search's matches with their sort key (name, '' for none); `_search_query` pages them."""


def _search_query(cursor: tuple[Any, str] | None, backwards: bool) -> str:
    comparison, direction = ("<", "DESC") if backwards else (">", "ASC")
    lines = [SEARCH_CUSTOMERS.strip()]
    if cursor is not None:
        lines.append(
            f"WHERE sortKey {comparison} $key OR (sortKey = $key AND c.id {comparison} $id)"
        )
    lines += [
        f"WITH c, sortKey ORDER BY sortKey {direction}, c.id {direction} LIMIT $limit",
        "RETURN properties(c) AS customer, sortKey",
    ]
    return "\n".join(lines)


async def search_customers(
    store: GraphStore,
    text: str,
    first: int,
    *,
    personal: bool = True,
    after: tuple[Any, str] | None = None,
    backwards: bool = False,
    scope: CustomerScope = EVERYONE,
) -> CustomerPage:
    """A page of the customers whose name or email contains `text` (case-insensitive), or
    whose phone contains its digits (four or more), by name then id, after the (name, id)
    cursor `after` (`backwards`: the ones before it, as `customer_page`). `personal=False`:
    names only (for callers who may not see emails and phones, who could otherwise find out
    who has one)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    params: dict[str, Any] = {"text": text.strip().lower(), "digits": digits,
                              "limit": first + 1, "personal": personal}  # fmt: skip
    if after is not None:
        params["key"], params["id"] = after
    query = _search_query(after, backwards).replace("{scope}", scope.keep("c", "c"))
    rows = await store.read(query, {**params, **scope.params})
    kept = rows[:first]
    if backwards:
        kept.reverse()
    return CustomerPage(
        [r["customer"] for r in kept], [r["sortKey"] for r in kept], len(rows) > first
    )


PROFILE_PROPERTIES = frozenset({"id", "name", "email", "phone", "city", "country", "signupAt"})
"""The profile's own properties; any other customer property came from an extra input column
(or, later, from analytics)."""

SEGMENTS = """
MATCH (s:Segment)
OPTIONAL MATCH (c:Customer)-[:IN_SEGMENT]->(s)
WITH s, count(c) AS size
RETURN properties(s) AS segment, size
ORDER BY segment.id
"""

TRANSACTION_BY_ID = "MATCH (t:Transaction {id: $id}) RETURN properties(t) AS transaction"
INTERACTION_BY_ID = "MATCH (i:Interaction {id: $id}) RETURN properties(i) AS interaction"
