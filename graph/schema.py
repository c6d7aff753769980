"""The graph model's keys and indexes, engine-neutral. `Dialect.schema_statements` spells them."""

from __future__ import annotations

from dataclasses import dataclass


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
    ),
    indexed=(
        ("SourceRecord", "emailKey"),
        ("SourceRecord", "phoneKey"),
        ("Transaction", "at"),
        ("Interaction", "at"),
        ("Customer", "country"),
        ("AuditEntry", "at"),
        ("AuditEntry", "keyId"),
        ("Event", "at"),
        ("WebhookDelivery", "webhookId"),
    ),
)
"""Unique ids for every entity (a saved view's is its name: Neo4j's MERGE of concurrent saves
under one name then makes one view; an event's number is unique, so that no two writers can
ever commit the same one); look-up indexes for identity resolution and time ranges."""

NODE_LABELS = ("Customer", "Product", "Category", "Transaction", "Interaction", "SourceRecord",
               "Segment", "ApiKey", "ModelCard", "SavedView")  # fmt: skip
TIE_TYPES = ("KNOWS", "REFERRED", "FAMILY", "COLLEAGUE")
"""The relationship types of social ties between customers: the one list of them."""
INTERACTION_TYPES = ("call", "email", "chat", "meeting", "ticket", "social", "web")
"""The `type` of an Interaction: the one list of them, in this order everywhere."""
