"""The Cypher for API keys: `(:ApiKey {id, name, role, hash, createdAt, revokedAt, lastUsedAt,
scopes, customerSystems, customerSegments, customerIds, expiresAt, replaces, replacedBy})`.

`scopes` is a list of scope names (absent on keys made before scopes: the role's preset);
the three `customer*` lists are the key's customer scope (graph/access.py; all absent or empty:
every customer); `expiresAt` (absent: never) and the rotation links `replaces` / `replacedBy`
(key ids).

Times are UTC epoch milliseconds, like every instant in the graph. `ApiKey.id` is a unique key
(graph/schema.py), so the look-up by id is one indexed read. Only `API_KEY_BY_ID` returns the
hash; nothing returns the secret, which is never stored.
"""

from __future__ import annotations

_FIELDS = """k.id AS id, k.name AS name, k.role AS role, k.createdAt AS createdAt,
       k.revokedAt AS revokedAt, k.lastUsedAt AS lastUsedAt, k.scopes AS scopes,
       k.customerSystems AS customerSystems, k.customerSegments AS customerSegments,
       k.customerIds AS customerIds, k.expiresAt AS expiresAt, k.replaces AS replaces,
       k.replacedBy AS replacedBy"""

CREATE_API_KEY = (
    """
OPTIONAL MATCH (existing:ApiKey {id: $id})
WITH count(existing) AS taken WHERE taken = 0
CREATE (k:ApiKey {id: $id, name: $name, role: $role, hash: $hash, createdAt: $at,
                  scopes: $scopes, customerSystems: $systems, customerSegments: $segments,
                  customerIds: $customerIds})
SET k.expiresAt = $expiresAt, k.replaces = $replaces
RETURN """
    + _FIELDS
)
"""A new key; no row when the id is taken (the caller draws another id). Counted, not
`WITH existing WHERE existing IS NULL`: FalkorDB 4 lets a bound node through that filter."""

API_KEY_BY_ID = (
    """
MATCH (k:ApiKey {id: $id})
RETURN k.hash AS hash, """
    + _FIELDS
)
"""The key to check a request against, hash included; no row when the id is unknown."""

LIST_API_KEYS = (
    """
MATCH (k:ApiKey)
RETURN """
    + _FIELDS
    + "\nORDER BY createdAt, id"
)
"""Every key, oldest first, without its hash."""

REVOKE_API_KEY = """
MATCH (k:ApiKey {id: $id})
SET k.revokedAt = coalesce(k.revokedAt, $at)
RETURN k.id AS id, k.revokedAt AS revokedAt
"""
"""Revoke a key (revoking it again keeps the first time); no row when the id is unknown."""

TOUCH_API_KEY = """
MATCH (k:ApiKey {id: $id})
WHERE k.revokedAt IS NULL AND (k.lastUsedAt IS NULL OR k.lastUsedAt < $at)
SET k.lastUsedAt = $at
"""
"""Record that a key was used at `$at` (never moving the time backwards): on Neo4j. On FalkorDB
the note is `KEY_USED`, in the audit trail's graph."""

KEY_USED = """
MERGE (u:KeyUse {keyId: $id})
SET u.at = CASE WHEN u.at IS NULL OR u.at < $at THEN $at ELSE u.at END
"""
"""On FalkorDB, that a key was used at `$at`, in the audit trail's graph
(`FalkorStore.audit_graph`), never moving the time backwards: a write to the customers' graph
once a minute per key, queued behind one long read of it, held every other request until that
read ended. `lastUsedAt` is then the later of this and the key's own (written before)."""

KEYS_USED = """
MATCH (u:KeyUse) WHERE u.keyId IN $ids
RETURN u.keyId AS id, u.at AS at
"""
"""The `KEY_USED` notes of keys."""

EXPIRE_API_KEY = """
MATCH (k:ApiKey {id: $id})
SET k.expiresAt = CASE WHEN k.expiresAt IS NULL OR k.expiresAt > $at THEN $at
                       ELSE k.expiresAt END, k.replacedBy = $replacedBy
RETURN k.id AS id, k.expiresAt AS expiresAt
"""
"""End a rotated key at `$at` (never later than an expiry it had), naming its successor."""

SET_CUSTOMER_IDS = """
MATCH (k:ApiKey {id: $id})
SET k.customerIds = $customerIds
RETURN k.id AS id
"""
"""Replace a key's explicit list of customers."""
