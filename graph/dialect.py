"""Where FalkorDB's and Neo4j's Cypher differ: DDL, a few functions. Every difference lives in
this table; domain queries elsewhere are written once in the common subset."""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from crm_graph.graph.schema import GraphSchema

WRITE_LOCK = "WriteLock"
"""Neo4j only: the label of the transient node `Neo4jDialect.serialized` locks (never stored)."""


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

    def spelled(self, statement: str) -> str:
        """`statement` (written in the common subset) as this engine is best sent it."""
        return statement

    @abstractmethod
    def serialized(self, statement: str) -> str:
        """`statement`, run one at a time with every other statement so wrapped: what a
        check-then-write statement (identity resolution) needs to be atomic."""


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

    def serialized(self, statement: str) -> str:
        # FalkorDB runs one write at a time: every write statement already is.
        return statement


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
        out.append(SchemaStep("unique", WRITE_LOCK, "name",
                              f"CREATE CONSTRAINT writelock_name_unique IF NOT EXISTS "
                              f"FOR (n:{WRITE_LOCK}) REQUIRE n.name IS UNIQUE"))  # fmt: skip
        return out

    def spelled(self, statement: str) -> str:
        return _scoped_subqueries(statement)

    def serialized(self, statement: str) -> str:
        # Neo4j interleaves transactions and its reads take no locks: two statements that both
        # read "no customer has this email yet" would both create one. MERGE on a uniquely
        # constrained key locks that key until the transaction ends, so a second writer's MERGE
        # waits for the first to commit and only then reads; deleting the node in the same
        # transaction leaves nothing in the graph (the lock is held until commit all the same).
        # A deadlock between two such writers is a transient error the driver's managed
        # transaction retries.
        return (
            f"MERGE (writeLock:{WRITE_LOCK} {{name: 'serialized'}}) DELETE writeLock\n"
            f"WITH count(*) AS locked\n{statement}"
        )


_IMPORTING_SUBQUERY = re.compile(
    r"CALL \{\s*WITH (\w+(?:\s*,\s*\w+)*)\s+"
    r"(?=(?:OPTIONAL MATCH|MATCH|UNWIND|RETURN|WITH|CALL|MERGE|CREATE)\b)"
)


@functools.lru_cache(maxsize=1024)
def _scoped_subqueries(statement: str) -> str:
    """`CALL { WITH c ... }` (the only form FalkorDB parses) as `CALL (c) { ... }`: Neo4j 5.23+
    deprecates importing variables with WITH, and says so in a notification on every run. Only
    a WITH that imports plain variables and is followed by a clause is rewritten."""
    return _IMPORTING_SUBQUERY.sub(r"CALL (\1) { ", statement)


FALKORDB = FalkorDialect()
NEO4J = Neo4jDialect()
