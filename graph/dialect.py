"""Where FalkorDB's and Neo4j's Cypher differ: DDL, a few functions. Every difference lives in
this table; domain queries elsewhere are written once in the common subset."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from crm_graph.graph.schema import GraphSchema


@dataclass(frozen=True)
class SchemaStep:
    """One index or unique key, and the statement that creates it (a tuple is a raw server
    command: FalkorDB's constraints are not Cypher)."""

    kind: str  # "index" or "unique"
    label: str
    prop: str
    statement: str | tuple[str, ...]


@dataclass(frozen=True)
class Dialect(ABC):
    """One engine's spelling of what the common subset cannot say."""

    name: str
    """`falkordb` or `neo4j`."""

    @abstractmethod
    def schema_statements(self, schema: GraphSchema) -> list[SchemaStep]:
        """The steps creating the schema's unique keys and indexes, in order."""


@dataclass(frozen=True)
class FalkorDialect(Dialect):
    name: str = "falkordb"

    def schema_statements(self, schema: GraphSchema) -> list[SchemaStep]:
        # A unique constraint needs an exact-match index on the same property first.
        out = [
            SchemaStep("index", label, prop, f"CREATE INDEX FOR (n:{label}) ON (n.{prop})")
            for label, prop in (*schema.unique, *schema.indexed)
        ]
        for label, prop in schema.unique:
            command = ("GRAPH.CONSTRAINT", "CREATE", "{graph}", "UNIQUE", "NODE", label,
                       "PROPERTIES", "1", prop)  # fmt: skip
            out.append(SchemaStep("unique", label, prop, command))
        return out


@dataclass(frozen=True)
class Neo4jDialect(Dialect):
    name: str = "neo4j"

    def schema_statements(self, schema: GraphSchema) -> list[SchemaStep]:
        # IF NOT EXISTS makes every step idempotent; a unique key brings its own index.
        out = [
            SchemaStep("unique", label, prop,
                       f"CREATE CONSTRAINT {label.lower()}_{prop.lower()}_unique IF NOT EXISTS "
                       f"FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE")
            for label, prop in schema.unique
        ]  # fmt: skip
        out += [
            SchemaStep("index", label, prop,
                       f"CREATE INDEX {label.lower()}_{prop.lower()} IF NOT EXISTS "
                       f"FOR (n:{label}) ON (n.{prop})")
            for label, prop in schema.indexed
        ]  # fmt: skip
        return out


FALKORDB = FalkorDialect()
NEO4J = Neo4jDialect()
