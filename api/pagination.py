"""The one page shape: Relay connections, paged forwards (`first`, `after`) or backwards
(`last`, `before`), with opaque cursors.

A cursor is the position of an item in its ordering (url-safe base64 of the ordering's name,
the item's sort key and its id): the next page starts strictly after it, so an item added or
removed meanwhile never makes a page repeat or skip another, and ties in the sort key are broken
by the id. A cursor that does not decode, or that belongs to another ordering, is refused with
`BAD_USER_INPUT` naming the argument.

`hasNextPage` on a page read forwards and `hasPreviousPage` on a page read backwards say
whether there are more items; on the other side they say whether a cursor was given (items
come before `after`, after `before`), as the Relay specification allows: finding out exactly
would cost a second read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import strawberry

from crm_graph.api.errors import user_error
from crm_graph.graph.pages import KeysetPage

MAX_PAGE = 100
"""The most items a page may ask for, `first` or `last`, on every connection."""
DEFAULT_PAGE = 20
"""The page size when neither `first` nor `last` is given."""


@strawberry.type(description="Where a page is in its list (Relay).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


Node = TypeVar("Node")
Item = TypeVar("Item")


@strawberry.type(description="An item of a page, with its cursor (Relay).")
class Edge(Generic[Node]):
    cursor: str
    node: Node


@strawberry.type(
    description="A page of a list (Relay connection): forwards with first/after, backwards "
    "with last/before, at most 100 items (20 when neither first nor last is given)."
)
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Every item the list holds for these arguments (in the key's scope), "
        "whatever the page."
    )

    @strawberry.field
    def nodes(self) -> list[Node]:
        return [edge.node for edge in self.edges]


@dataclass(frozen=True)
class PageRequest:
    """A page's arguments, checked: `size` items after `after` (forwards) or before `before`
    (backwards), each cursor decoded to (sort key, id)."""

    size: int
    backwards: bool
    cursor: tuple[Any, str] | None


def page_request(
    field: str,
    ordering: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> PageRequest:
    """The page `field`'s arguments ask for, in `ordering` (the name cursors carry); a
    `BAD_USER_INPUT` error naming the argument for sizes out of 0..MAX_PAGE, `first` with
    `last`, a cursor on the other side (`before` with `first`, `after` with `last`), or a
    cursor this ordering did not make."""
    if first is not None and last is not None:
        raise user_error("give first or last, not both", field=f"{field}.last")
    if last is not None or before is not None:
        if after is not None:
            raise user_error(
                "after goes with first; page backwards with last and before",
                field=f"{field}.after",
            )
        if first is not None:
            raise user_error(
                "before goes with last; page forwards with first and after",
                field=f"{field}.before",
            )
        size = DEFAULT_PAGE if last is None else last
        _check_size(size, f"{field}.last", "last")
        cursor = decode_cursor(before, ordering, "before") if before is not None else None
        return PageRequest(size, True, cursor)
    size = DEFAULT_PAGE if first is None else first
    _check_size(size, f"{field}.first", "first")
    cursor = decode_cursor(after, ordering, "after") if after is not None else None
    return PageRequest(size, False, cursor)


def _check_size(size: int, field: str, name: str) -> None:
    if size < 0 or size > MAX_PAGE:
        raise user_error(f"{name} must be between 0 and {MAX_PAGE}", field=field, max=MAX_PAGE)


def encode_cursor(ordering: str, sort_key: Any, item_id: str) -> str:
    raw = json.dumps([ordering, sort_key, item_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, ordering: str, argument: str) -> tuple[Any, str]:
    """The (sort key, id) of a cursor made by `encode_cursor` for `ordering`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, sort_key, item_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(item_id, str) or isinstance(sort_key, dict | list | bool):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise user_error(f"{argument} is not a cursor this API returned", field=argument) from e
    if made_for != ordering:
        raise user_error(
            f"{argument} is a cursor of another ordering: page with the orderBy it came with",
            field=argument,
        )
    return sort_key, item_id


def page_info(cursors: list[str], request: PageRequest, more: bool) -> PageInfo:
    """The page info of a page whose items have `cursors`, `more` saying whether the read found
    items beyond the page in its direction."""
    given = request.cursor is not None
    return PageInfo(
        has_next_page=given if request.backwards else more,
        has_previous_page=more if request.backwards else given,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def connection(
    items: Sequence[Item],
    request: PageRequest,
    ordering: str,
    position: Callable[[Item], tuple[Any, str]],
    node: Callable[[Item], Node],
    total: int,
) -> Connection[Node]:
    """The page of `request` from `items`: what the store cut for it (in the ordering, up to one
    item more than asked, `graph.pages`), each item's cursor made of its (sort key, id)
    `position` in `ordering`."""
    kept, more = KeysetPage(request.size, request.backwards).cut(list(items))
    edges = [Edge(cursor=encode_cursor(ordering, *position(i)), node=node(i)) for i in kept]
    return Connection(
        edges=edges,
        page_info=page_info([e.cursor for e in edges], request, more),
        total_count=total,
    )


def page_of(
    items: Sequence[Item],
    request: PageRequest,
    position: Callable[[Item], tuple[Any, str]],
    *,
    descending: bool = False,
) -> list[Item]:
    """What the store's `keyset_slice` cuts, cut here instead from all of a short list already
    read (`items`, in the ordering: an order's lines): the items strictly after (backwards:
    before) the cursor, `request.size + 1` of them at most."""
    if request.cursor is not None:
        key, ident = request.cursor

        def beyond(item: Item) -> bool:
            k, i = position(item)
            ahead = (k, i) > (key, ident)
            return ahead != (descending != request.backwards) and (k, i) != (key, ident)

        items = [i for i in items if beyond(i)]
    take = request.size + 1
    return list(items[-take:] if request.backwards else items[:take])
