"""Saved views: a named filter of the `customers` query, kept in the graph so that analysts share
it by name (`/explore#view=<name>`).

    (:SavedView {name, filter, orderBy, description, createdAt, createdBy, updatedAt, updatedBy})

`filter` and `orderBy` are JSON texts of the GraphQL input objects, exactly as a client sends
them as variables; the API checks them against the schema before they are saved.
"""

from __future__ import annotations

from typing import Any

from crm_graph.graph.store import GraphStore

SAVE_VIEW = """
MERGE (v:SavedView {name: $name})
ON CREATE SET v.createdAt = $now, v.createdBy = $by
SET v.filter = $filter, v.orderBy = $orderBy, v.description = $description,
    v.updatedAt = $now, v.updatedBy = $by
RETURN properties(v) AS view
"""
"""Create the view, or replace its filter, order and description (keeping who created it)."""

SAVED_VIEWS = """
MATCH (v:SavedView)
RETURN properties(v) AS view
ORDER BY view.name
"""

SAVED_VIEW = """
MATCH (v:SavedView {name: $name})
RETURN properties(v) AS view
"""

DELETE_VIEW = """
MATCH (v:SavedView {name: $name})
WITH v, v.name AS name
DELETE v
RETURN name
"""


async def save_view(
    store: GraphStore,
    name: str,
    filter_json: str,
    order_json: str | None,
    description: str | None,
    by: str,
    now: int,
) -> dict[str, Any]:
    """The view as stored after saving it."""
    rows = await store.write(
        SAVE_VIEW,
        {
            "name": name,
            "filter": filter_json,
            "orderBy": order_json,
            "description": description,
            "by": by,
            "now": now,
        },
    )
    return dict(rows[0]["view"])


async def saved_views(store: GraphStore) -> list[dict[str, Any]]:
    return [dict(r["view"]) for r in await store.read(SAVED_VIEWS)]


async def saved_view(store: GraphStore, name: str) -> dict[str, Any] | None:
    rows = await store.read(SAVED_VIEW, {"name": name})
    return dict(rows[0]["view"]) if rows else None


async def delete_view(store: GraphStore, name: str) -> bool:
    """True when there was such a view."""
    return bool(await store.write(DELETE_VIEW, {"name": name}))
