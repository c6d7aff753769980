"""The graph store: one async protocol, an embedded FalkorDB and Neo4j behind it, all Cypher."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crm-graph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"
