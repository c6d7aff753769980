"""Exploring the social graph: the neighbourhood of a customer, and how two customers are
connected. Both walk the graph one level per statement (breadth first), so the cost is bounded
by the depth asked for, portable across engines, and never an unbounded variable-length match
over a heavy-tailed network."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from crm_graph.graph.access import EVERYONE, CustomerScope
from crm_graph.graph.customer_reads import customers_by_id
from crm_graph.graph.schema import TIE_TYPES
from crm_graph.graph.store import GraphStore

MAX_DEPTH = 3
MAX_PATH_LENGTH = 6
DEFAULT_NODE_LIMIT = 500


def expand_ties(types: Iterable[str] | None = None, scope: CustomerScope = EVERYONE) -> str:
    """One breadth-first level: every tie of the given types touching the frontier, between
    customers in `scope` (a walk never passes through a customer outside it: that would show
    it exists)."""
    chosen = sorted(set(types)) if types else list(TIE_TYPES)
    unknown = [t for t in chosen if t not in TIE_TYPES]
    if unknown:
        raise ValueError(f"unknown social tie type(s) {unknown}")
    return (
        "UNWIND $ids AS id "
        f"MATCH (c:Customer {{id: id}})-[r:{'|'.join(chosen)}]-(o:Customer) "
        + scope.keep("c", "id, c, r, o")
        + scope.keep("o", "id, c, r, o")
        + "RETURN id AS from, o.id AS to, type(r) AS type, startNode(r) = c AS outgoing, "
        "r.since AS since, r.weight AS weight"
    )


@dataclass(frozen=True)
class Tie:
    source: str
    target: str
    type: str
    since: int | None
    weight: float | None


def tie_of(row: dict[str, Any]) -> Tie:
    source, target = (row["from"], row["to"]) if row["outgoing"] else (row["to"], row["from"])
    return Tie(source, target, row["type"], row["since"], row["weight"])


@dataclass
class Neighbourhood:
    center: dict[str, Any]
    distance: dict[str, int]
    customers: dict[str, dict[str, Any]]
    ties: list[Tie] = field(default_factory=list)
    truncated: bool = False


async def profiles(
    store: GraphStore, ids: Iterable[str], scope: CustomerScope = EVERYONE
) -> dict[str, dict[str, Any]]:
    rows = await store.read(customers_by_id(scope), {"ids": list(ids), **scope.params})
    return {row["id"]: row["customer"] for row in rows}


async def neighbourhood(
    store: GraphStore,
    customer_id: str,
    depth: int,
    types: Iterable[str] | None = None,
    limit: int = DEFAULT_NODE_LIMIT,
    scope: CustomerScope = EVERYONE,
) -> Neighbourhood | None:
    """Customers within `depth` ties of `customer_id` (1..3), with their distance, and every tie
    between two of them. Stops adding customers at `limit` (and says so)."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be between 1 and {MAX_DEPTH}")
    query = expand_ties(types, scope)
    distance = {customer_id: 0}
    frontier = [customer_id]
    ties: dict[tuple[str, str, str], Tie] = {}
    truncated = False
    for level in range(1, depth + 1):
        if not frontier:
            break
        rows = await store.read(query, {"ids": frontier, **scope.params})
        next_frontier = []
        for row in rows:
            other = row["to"]
            if other not in distance:
                if len(distance) >= limit:
                    truncated = True
                    continue
                distance[other] = level
                next_frontier.append(other)
            tie = tie_of(row)
            ties[(tie.source, tie.target, tie.type)] = tie
        frontier = next_frontier
    if frontier and not truncated:
        # ties among the outermost ring (both ends already inside) are part of the picture
        rows = await store.read(query, {"ids": frontier, **scope.params})
        for row in rows:
            if row["to"] in distance:
                tie = tie_of(row)
                ties[(tie.source, tie.target, tie.type)] = tie
    found = await profiles(store, distance, scope)
    if customer_id not in found:
        return None
    kept = [t for t in ties.values() if t.source in distance and t.target in distance]
    return Neighbourhood(found[customer_id], distance, found, kept, truncated)


@dataclass
class Path:
    customers: list[dict[str, Any]]
    ties: list[Tie]


async def shortest_path(
    store: GraphStore,
    source: str,
    target: str,
    max_length: int,
    types: Iterable[str] | None = None,
    scope: CustomerScope = EVERYONE,
) -> Path | None:
    """A shortest chain of ties (either direction) from `source` to `target`, at most
    `max_length` ties long, or None. Bidirectional breadth-first search: each step expands the
    smaller frontier with one statement."""
    if not 1 <= max_length <= MAX_PATH_LENGTH:
        raise ValueError(f"maxLength must be between 1 and {MAX_PATH_LENGTH}")
    found = await profiles(store, {source, target}, scope)
    if source not in found or target not in found:
        return None
    if source == target:
        return Path([found[source]], [])
    query = expand_ties(types, scope)
    parents: list[dict[str, tuple[str, Tie] | None]] = [{source: None}, {target: None}]
    frontiers = [[source], [target]]
    meeting: str | None = None
    for _ in range(max_length):
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        if not frontiers[side]:
            return None
        rows = await store.read(query, {"ids": frontiers[side], **scope.params})
        next_frontier = []
        for row in sorted(rows, key=lambda r: (r["from"], r["to"], r["type"])):
            other = row["to"]
            if other in parents[side]:
                continue
            parents[side][other] = (row["from"], tie_of(row))
            next_frontier.append(other)
            if other in parents[1 - side]:
                meeting = other
                break
        frontiers[side] = next_frontier
        if meeting is not None:
            break
    if meeting is None:
        return None
    chain: list[Any] = [meeting]
    chain_ties: list[Any] = []
    node = meeting
    while (step := parents[0][node]) is not None:
        node, tie = step
        chain.insert(0, node)
        chain_ties.insert(0, tie)
    node = meeting
    while (step := parents[1][node]) is not None:
        node, tie = step
        chain.append(node)
        chain_ties.append(tie)
    found.update(await profiles(store, set(chain) - set(found), scope))
    return Path([found[c] for c in chain], chain_ties)
