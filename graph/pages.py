"""Keyset pages of a list the store orders: the Cypher that cuts a page out of it, in the same
statement that reads it (`api.pagination` makes the cursors and checks the arguments).

A relation of a customer (orders, contacts, ties, products bought; a product's buyers) is
collected per customer in its ordering, then `keyset_slice` keeps the items strictly after the
cursor `after` (or strictly before `before`) and takes the first `size + 1` of them (backwards:
the last `size + 1`, still in the ordering): the one extra item says whether more come. Items
are compared by (sort key, id), the order the list is in, so an item added or removed meanwhile
never makes a page repeat or skip another. Everything is parameters: one statement text per
relation, whatever the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[a-z][A-Za-z0-9]*")


@dataclass(frozen=True)
class KeysetPage:
    """A page of a relation: `size` items after `cursor` (a (sort key, id) pair, or None for
    the start), or with `backwards` the `size` items before it (or the last ones)."""

    size: int
    backwards: bool = False
    cursor: tuple[Any, str] | None = None

    def params(self, prefix: str) -> dict[str, Any]:
        """The parameters of `keyset_slice(..., prefix, ...)` for this page."""
        after = None if self.backwards else self.cursor
        before = self.cursor if self.backwards else None
        return {
            f"{prefix}Take": self.size + 1,
            f"{prefix}Back": self.backwards,
            f"{prefix}AfterKey": after[0] if after else None,
            f"{prefix}AfterId": after[1] if after else None,
            f"{prefix}BeforeKey": before[0] if before else None,
            f"{prefix}BeforeId": before[1] if before else None,
        }

    def cut(self, items: list[Any]) -> tuple[list[Any], bool]:
        """The page of `items` (what `keyset_slice` returned, in the ordering: up to `size + 1`)
        and whether more items lie beyond it in the page's direction."""
        more = len(items) > self.size
        if not more:
            return items, False
        return (items[len(items) - self.size :] if self.backwards else items[: self.size]), True


def keyset_slice(
    items: str,
    key: str,
    ident: str,
    prefix: str,
    *,
    descending: bool,
    ident_descending: bool | None = None,
) -> str:
    """A Cypher expression: the page (`KeysetPage.params(prefix)`) of the list expression
    `items`, which is in the order of the sort key (descending or not), then of the id (by
    default in the same direction; `ident_descending` says otherwise). `key` and `ident` are
    expressions of the item `x` (e.g. `x.at`, `x.customer.id`). The list is filtered once (only
    one branch of the CASE runs); `reverse` twice takes its last items on both engines."""
    if not _NAME.fullmatch(prefix):
        raise ValueError(f"not a parameter prefix: {prefix!r}")
    var = f"{prefix}X"
    k, i = key.replace("x.", f"{var}."), ident.replace("x.", f"{var}.")
    later, earlier = ("<", ">") if descending else (">", "<")
    if ident_descending is None:
        ident_descending = descending
    id_later, id_earlier = ("<", ">") if ident_descending else (">", "<")
    after = (
        f"(${prefix}AfterId IS NULL OR {k} {later} ${prefix}AfterKey "
        f"OR ({k} = ${prefix}AfterKey AND {i} {id_later} ${prefix}AfterId))"
    )
    before = (
        f"(${prefix}BeforeId IS NULL OR {k} {earlier} ${prefix}BeforeKey "
        f"OR ({k} = ${prefix}BeforeKey AND {i} {id_earlier} ${prefix}BeforeId))"
    )
    kept = f"[{var} IN {items} WHERE {after} AND {before}]"
    return (
        f"CASE WHEN ${prefix}Back THEN reverse(reverse({kept})[0..${prefix}Take]) "
        f"ELSE {kept}[0..${prefix}Take] END"
    )
