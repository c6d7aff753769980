"""Customer scope: which customers an API key may see, as a Cypher predicate.

A key may be limited to some customers: those with a source record of given systems
(`(:Customer)-[:HAS_SOURCE]->(:SourceRecord {system})`), those in given segments (by segment id
or name), and an explicit list of customer ids. A customer is in scope when any of them says
so. Outside its scope a customer does not exist for the key: every statement that can return a
customer, or walk through one, keeps only the customers in scope (`CustomerScope.keep`, or
`CustomerScope.expression` inside a projection) in the same statement, so that pages, cursors,
counts, paths and neighbourhoods are computed over the customers in scope only, never filtered
after the store answered.

The predicate's text depends only on which kinds of limits a scope has (never on their values,
which are parameters), so the statements stay few and their plans cached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_SCOPE_IDS = 10_000
"""An explicit list holds at most this many customer ids (it travels with every statement)."""

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class CustomerScope:
    """The customers a key may see. `everyone` (no limits at all) is `EVERYONE`."""

    systems: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    @property
    def everyone(self) -> bool:
        return not (self.systems or self.segments or self.ids)

    @property
    def params(self) -> dict[str, Any]:
        """The parameters `where` refers to (only those of the limits this scope has)."""
        found: dict[str, Any] = {}
        if self.ids:
            found["scopeIds"] = list(self.ids)
        if self.systems:
            found["scopeSystems"] = list(self.systems)
        if self.segments:
            found["scopeSegments"] = list(self.segments)
        return found

    @property
    def shape(self) -> CustomerScope:
        """Which kinds of limits this scope has, without their values: what `where` depends on
        (a key for statements built once)."""
        return CustomerScope(
            systems=("",) if self.systems else (),
            segments=("",) if self.segments else (),
            ids=("",) if self.ids else (),
        )

    def expression(self, var: str) -> str:
        """A boolean expression: the customer bound to `var` is in scope ("true" for everyone).
        For a projection (WITH, RETURN, CASE inside them) only: FalkorDB 4.16 refuses the
        pattern comprehensions it uses in a WHERE ("Unable to resolve filtered alias"), and
        neither pattern predicates with a list of values nor `EXISTS {}` are in the common
        subset of FalkorDB and Neo4j. A null `var` is out of scope (empty comprehensions)."""
        if not _VARIABLE.fullmatch(var):
            raise ValueError(f"not a variable name: {var!r}")
        terms = []
        if self.ids:
            terms.append(f"{var}.id IN $scopeIds")
        if self.systems:
            terms.append(
                f"any(x IN [({var})-[:HAS_SOURCE]->({var}ScopeSrc:SourceRecord) "
                f"| {var}ScopeSrc.system] WHERE x IN $scopeSystems)"
            )
        if self.segments:
            terms.append(
                f"any(x IN [({var})-[:IN_SEGMENT]->({var}ScopeSeg:Segment) "
                f"| {var}ScopeSeg.id] + [({var})-[:IN_SEGMENT]->({var}ScopeSeg2:Segment) "
                f"| {var}ScopeSeg2.name] WHERE x IN $scopeSegments)"
            )
        return "(" + " OR ".join(terms) + ")" if terms else "true"

    def keep(self, var: str, carried: str) -> str:
        """A clause keeping the rows whose customer `var` is in scope, carrying `carried` (the
        variables the statement needs after it, `var` among them); empty for everyone."""
        if self.everyone:
            return ""
        return f"WITH {carried}, {self.expression(var)} AS {var}InScope WHERE {var}InScope\n"

    def describe(self) -> str:
        """One line for `keys list`: `all`, or the limits."""
        if self.everyone:
            return "all"
        parts = []
        if self.systems:
            parts.append("source:" + ",".join(self.systems))
        if self.segments:
            parts.append("segment:" + ",".join(self.segments))
        if self.ids:
            parts.append(f"ids:{len(self.ids)}")
        return " ".join(parts)


EVERYONE = CustomerScope()


def scope_of(systems: Any = None, segments: Any = None, ids: Any = None) -> CustomerScope:
    """The scope stored on a key (lists or nulls, as read from the graph)."""
    return CustomerScope(
        systems=tuple(systems or ()), segments=tuple(segments or ()), ids=tuple(ids or ())
    )
