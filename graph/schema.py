"""The graph model's keys and indexes, engine-neutral. `Dialect.schema_statements` spells them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class GraphSchema:
    unique: tuple[tuple[str, str], ...]
    indexed: tuple[tuple[str, str], ...]


CRM_SCHEMA = GraphSchema(
    unique=(
        ("Customer", "id"),
        ("Product", "id"),
        ("Category", "name"),
        ("Transaction", "id"),
        ("Interaction", "id"),
        ("SourceRecord", "id"),
        ("Segment", "id"),
        ("ApiKey", "id"),
        ("ModelCard", "id"),
        ("SavedView", "name"),
        ("Event", "sequence"),
        ("EventSequence", "id"),
        ("Webhook", "id"),
        ("WebhookDelivery", "id"),
        ("KeyUse", "keyId"),
    ),
    indexed=(
        ("SourceRecord", "emailKey"),
        ("SourceRecord", "phoneKey"),
        ("Transaction", "at"),
        ("Interaction", "at"),
        ("Customer", "country"),
        ("AuditEntry", "at"),
        ("AuditEntry", "keyId"),
        ("AuditEntry", "requestId"),
        ("Event", "at"),
        ("WebhookDelivery", "webhookId"),
    ),
)
"""Unique ids for every entity (a saved view's is its name: Neo4j's MERGE of concurrent saves
under one name then makes one view; an event's number is unique, so that no two writers can
ever commit the same one); look-up indexes for identity resolution and time ranges."""

AUDIT_SCHEMA = GraphSchema(
    unique=(("KeyUse", "keyId"),),
    indexed=(("AuditEntry", "at"), ("AuditEntry", "keyId"), ("AuditEntry", "requestId")),
)
"""The audit trail's indexes, and the key of the keys' last-use notes (one per key, whatever
number of servers note it at once). On FalkorDB the entries live in a graph of their own beside the
customers' (`FalkorStore.audit_graph`), which gets these; on Neo4j, in the one database."""


def without(schema: GraphSchema, other: GraphSchema) -> GraphSchema:
    """`schema`'s keys and indexes less those of `other`."""
    return GraphSchema(
        unique=tuple(k for k in schema.unique if k not in other.unique),
        indexed=tuple(k for k in schema.indexed if k not in other.indexed),
    )


MAIN_SCHEMA = without(CRM_SCHEMA, AUDIT_SCHEMA)
"""What FalkorDB's main graph gets: everything but the audit trail's indexes."""

NODE_LABELS = ("Customer", "Product", "Category", "Transaction", "Interaction", "SourceRecord",
               "Segment", "ApiKey", "ModelCard", "SavedView")  # fmt: skip


class TieType(Enum):
    """The relationship types of social ties between customers: the one list of them (the
    GraphQL enum of the same name is this class)."""

    KNOWS = "KNOWS"
    REFERRED = "REFERRED"
    FAMILY = "FAMILY"
    COLLEAGUE = "COLLEAGUE"


class InteractionType(Enum):
    """The `type` of an Interaction: the one list of them, in this order everywhere (the
    GraphQL enum of the same name is this class)."""

    CALL = "call"
    EMAIL = "email"
    CHAT = "chat"
    MEETING = "meeting"
    TICKET = "ticket"
    SOCIAL = "social"
    WEB = "web"


TIE_TYPES = tuple(t.value for t in TieType)
"""The tie types as the graph spells them."""
INTERACTION_TYPES = tuple(t.value for t in InteractionType)
"""The interaction types as the graph stores them."""
