"""Store settings: read once from the environment (or the CLI), typed, failing fast with the name
of what is wrong."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from crm_graph.graph import money
from crm_graph.graph.errors import ConfigurationError

StoreKind = Literal["embedded", "falkordb", "neo4j"]
APPENDFSYNC_CHOICES = ("always", "everysec", "no")
DEFAULT_GRAPH_NAME = "crm"


@dataclass(frozen=True)
class StoreSettings:
    """Where the graph lives and how to talk to it.

    `CRM_GRAPH_STORE` chooses the engine: `embedded` (default: FalkorDB started by the app in
    `CRM_GRAPH_DATA_DIR`), `falkordb://[:password@]host:port[/graph]` (an external FalkorDB), or
    `neo4j://...` / `bolt://...` (`neo4j+s://` and `bolt+s://` too; credentials from the URL or
    `NEO4J_USER` / `NEO4J_PASSWORD`).
    """

    kind: StoreKind = "embedded"
    data_dir: Path = Path("data")
    appendfsync: str = "everysec"
    graph_name: str = DEFAULT_GRAPH_NAME
    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379
    username: str | None = None
    password: str | None = None
    database: str | None = None
    currency: str = money.DEFAULT_CURRENCY
    """`CRM_GRAPH_CURRENCY`: the ISO 4217 code of every amount (graph/money.py)."""

    @property
    def description(self) -> str:
        """A human description without secrets, for `status` and logs."""
        if self.kind == "embedded":
            return f"embedded FalkorDB in {self.data_dir.resolve()}"
        if self.kind == "falkordb":
            return f"FalkorDB at {self.host}:{self.port} (graph {self.graph_name!r})"
        parts = urlsplit(self.url or "")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        db = f" (database {self.database!r})" if self.database else ""
        return f"Neo4j at {parts.scheme}://{host}{port}{db}"


def parse_store(
    store: str | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> StoreSettings:
    """Build `StoreSettings` from a store URL (or `embedded`) plus the environment.

    Arguments given here win over the environment; the environment wins over defaults.
    """
    env = os.environ if env is None else env
    spec = (store or env.get("CRM_GRAPH_STORE") or "embedded").strip()
    directory = Path(data_dir or env.get("CRM_GRAPH_DATA_DIR") or "data")
    appendfsync = env.get("CRM_GRAPH_APPENDFSYNC", "everysec").strip().lower()
    if appendfsync not in APPENDFSYNC_CHOICES:
        raise ConfigurationError(
            f"CRM_GRAPH_APPENDFSYNC must be one of {', '.join(APPENDFSYNC_CHOICES)}, "
            f"got {appendfsync!r}"
        )
    graph_name = env.get("CRM_GRAPH_GRAPH", DEFAULT_GRAPH_NAME).strip() or DEFAULT_GRAPH_NAME
    currency = money.currency(env.get("CRM_GRAPH_CURRENCY") or money.DEFAULT_CURRENCY)[0]

    if spec == "embedded":
        return StoreSettings(
            kind="embedded",
            data_dir=directory,
            appendfsync=appendfsync,
            graph_name=graph_name,
            currency=currency,
        )

    parts = urlsplit(spec)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as e:
        raise ConfigurationError(f"CRM_GRAPH_STORE has a malformed port: {spec!r}") from e

    if scheme in ("falkordb", "redis"):
        if not parts.hostname:
            raise ConfigurationError(
                f"CRM_GRAPH_STORE {spec!r} names no host; expected falkordb://host:port"
            )
        path_graph = parts.path.strip("/")
        return StoreSettings(
            kind="falkordb",
            data_dir=directory,
            graph_name=path_graph or graph_name,
            url=spec,
            host=parts.hostname,
            port=port or 6379,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            currency=currency,
        )

    if scheme in ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc"):
        if not parts.hostname:
            raise ConfigurationError(
                f"CRM_GRAPH_STORE {spec!r} names no host; expected neo4j://host:7687"
            )
        username = unquote(parts.username) if parts.username else env.get("NEO4J_USER")
        password = unquote(parts.password) if parts.password else env.get("NEO4J_PASSWORD")
        if not username or password is None:
            raise ConfigurationError(
                "Neo4j needs credentials: put them in the URL (neo4j://user:pass@host) "
                "or set NEO4J_USER and NEO4J_PASSWORD"
            )
        netloc = parts.hostname + (f":{port}" if port else "")
        database = parts.path.strip("/") or env.get("NEO4J_DATABASE") or None
        return StoreSettings(
            kind="neo4j",
            data_dir=directory,
            url=f"{scheme}://{netloc}",
            username=username,
            password=password,
            database=database,
            currency=currency,
        )

    raise ConfigurationError(
        f"CRM_GRAPH_STORE must be 'embedded', falkordb://host:port or neo4j://host:port, "
        f"got {spec!r}"
    )
