"""Turn engine-specific result values into plain Python: dicts, lists, scalars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a value returned by FalkorDB or Neo4j.

    Nodes become `{"_labels": [...], **properties}`, relationships `{"_type": T, **properties}`,
    paths `{"nodes": [...], "relationships": [...]}`; dates become ISO strings.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    kind = type(value).__name__
    if kind == "Node":
        labels = getattr(value, "labels", None)
        props = getattr(value, "properties", None)
        if props is None:  # neo4j.graph.Node is itself a mapping-like object
            props = dict(value.items())
        return {"_labels": sorted(labels or []), **plain(props)}
    if kind in ("Edge", "Relationship"):
        rel_type = getattr(value, "relation", None) or getattr(value, "type", None)
        props = getattr(value, "properties", None)
        if props is None:
            props = dict(value.items())
        return {"_type": rel_type, **plain(props)}
    if kind == "Path":
        nodes = value.nodes() if callable(value.nodes) else value.nodes
        edges = value.edges() if hasattr(value, "edges") else value.relationships
        return {"nodes": [plain(n) for n in nodes], "relationships": [plain(e) for e in edges]}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "iso_format"):  # neo4j.time types
        return value.iso_format()
    return str(value)
