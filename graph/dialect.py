"""Where FalkorDB's and Neo4j's Cypher differ: DDL, a few functions. Every difference lives in
this table; domain queries elsewhere are written once in the common subset."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from graph.schema import GraphSchema


@dataclass(frozen=True)
class Dialect(ABC):
    """One engine's spelling of what the common subset cannot say."""

    name: str
    """`falkordb` or `neo4j`."""

    @abstractmethod
    def schema_statements(self, schema: GraphSchema) -> list[str | tuple[str, ...]]:
        """Idempotent statements creating the schema's unique keys and indexes.

        A tuple is a raw server command (FalkorDB's constraints are not Cypher).
        """


@dataclass(frozen=True)
class FalkorDialect(Dialect):
    name: str = "falkordb"

    def schema_statements(self, schema: GraphSchema) -> list[str | tuple[str, ...]]:
        # A unique constraint needs an exact-match index on the same property first.
        out: list[str | tuple[str, ...]] = []
        for label, prop in (*schema.unique, *schema.indexed):
            out.append(f"CREATE INDEX FOR (n:{label}) ON (n.{prop})")
        for label, prop in schema.unique:
            out.append(("GRAPH.CONSTRAINT", "CREATE", "{graph}", "UNIQUE", "NODE", label,
                        "PROPERTIES", "1", prop))  # fmt: skip
        return out


@dataclass(frozen=True)
class Neo4jDialect(Dialect):
    name: str = "neo4j"

    def schema_statements(self, schema: GraphSchema) -> list[str | tuple[str, ...]]:
        out: list[str | tuple[str, ...]] = []
        for label, prop in schema.unique:
            out.append(
                f"CREATE CONSTRAINT {label.lower()}_{prop.lower()}_unique IF NOT EXISTS "
                f"FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE"
            )
        for label, prop in schema.indexed:
            out.append(
                f"CREATE INDEX {label.lower()}_{prop.lower()} IF NOT EXISTS "
                f"FOR (n:{label}) ON (n.{prop})"
            )
        return out


FALKORDB = FalkorDialect()
NEO4J = Neo4jDialect()
