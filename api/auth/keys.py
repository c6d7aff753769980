"""API keys: create, list, revoke, and authenticate a request's `Authorization` header.

A key reads `crm_<id>_<secret>`: `id` is 12 letters and digits (public: it names the key in
lists and logs), `secret` is 32 random bytes, url-safe base64 (43 characters). The graph keeps
only a SHA-256 digest of the secret. A fast hash is enough here, unlike for passwords: the
secret has 256 bits of entropy, so nothing can be guessed faster than by brute force over
2**256, and a slow hash (scrypt, argon2) would only add its cost to every request. Digests are
compared with `hmac.compare_digest`.

A key is looked up by id (one indexed read). The server remembers a successful look-up for at
most a second (api/auth/cache.py, `CRM_GRAPH_KEY_CACHE_SECONDS`): a revoke or an expiry takes
effect on every server process within that time; `authenticate` itself never caches. A key
carries scopes (api/auth/scopes.py), a customer scope (graph/access.py) and an optional expiry;
rotating a key makes a new one with the same rights and lets the old one work for an overlap
window, then expire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_graph.api.auth.principal import AuthError, Principal
from crm_graph.api.auth.scopes import PRESETS, UNRESTRICTED_ONLY, Role, Scope
from crm_graph.graph import api_keys
from crm_graph.graph.access import EVERYONE, MAX_SCOPE_IDS, CustomerScope, scope_of
from crm_graph.graph.store import GraphStore

KEY_PREFIX = "crm_"
ID_LENGTH = 12
SECRET_BYTES = 32
HASH_SCHEME = "sha256"
MAX_NAME_LENGTH = 100
LAST_USED_RESOLUTION_MS = 60_000
"""`lastUsedAt` moves at most once a minute per key and server process: one write a minute, not
one per request (on FalkorDB in the audit trail's graph: `_note_use`)."""

_ID_ALPHABET = string.ascii_letters + string.digits
_KEY_PATTERN = re.compile(
    rf"{KEY_PREFIX}(?P<id>[A-Za-z0-9]{{{ID_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{43}})"
)
_ID_ATTEMPTS = 5


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown about a key: never its secret, never its hash."""

    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    scopes: frozenset[Scope] = frozenset()
    customers: CustomerScope = EVERYONE
    expires_at: datetime | None = None
    replaces: str | None = None
    replaced_by: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


async def create_key(
    store: GraphStore,
    role: Role | str,
    name: str,
    *,
    scopes: frozenset[Scope] | None = None,
    customers: CustomerScope = EVERYONE,
    expires_at: datetime | None = None,
    now: datetime | None = None,
    replaces: str | None = None,
) -> tuple[ApiKeyInfo, str]:
    """Create a key; return what describes it and the full key, which is shown only now.

    `scopes`: what it may read and write (default: the role's preset); `customers`: which
    customers it sees (default: all); `expires_at`: when it stops working (default: never).
    Raises `ValueError` for an unknown role, an empty, too long or multi-line name, no scopes,
    a scope only keys seeing every customer may hold on a key with a customer scope, a customer
    scope too long, or an expiry not in the future.
    """
    role = _role(role)
    name = _checked_name(name)
    chosen = PRESETS[role.value] if scopes is None else frozenset(scopes)
    _check_scopes(chosen, customers)
    at = _epoch_ms(now)
    expires = None if expires_at is None else _epoch_ms(expires_at)
    if expires is not None and expires <= at:
        raise ValueError("a key's expiry must be in the future")
    for _ in range(_ID_ATTEMPTS):
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))
        secret = secrets.token_urlsafe(SECRET_BYTES)
        rows = await store.write(
            api_keys.CREATE_API_KEY,
            {
                "id": key_id, "name": name, "role": role.value, "hash": _digest(secret),
                "at": at, "scopes": sorted(s.value for s in chosen),
                "systems": list(customers.systems), "segments": list(customers.segments),
                "customerIds": list(customers.ids), "expiresAt": expires, "replaces": replaces,
            },
        )  # fmt: skip
        if rows:
            return _info(rows[0]), f"{KEY_PREFIX}{key_id}_{secret}"
    raise RuntimeError(f"no free key id after {_ID_ATTEMPTS} draws")


def _check_scopes(scopes: frozenset[Scope], customers: CustomerScope) -> None:
    if not scopes:
        raise ValueError("a key needs at least one scope")
    if not customers.everyone and (broad := sorted(scopes & UNRESTRICTED_ONLY)):
        raise ValueError(
            f"the scope(s) {', '.join(broad)} reach every customer: a key limited to some "
            "customers cannot have them"
        )
    if len(customers.ids) > MAX_SCOPE_IDS:
        raise ValueError(f"a customer scope lists at most {MAX_SCOPE_IDS} customer ids")


async def rotate_key(
    store: GraphStore, key_id: str, *, overlap: timedelta, now: datetime | None = None
) -> tuple[ApiKeyInfo, str] | None:
    """A new key with the same name, role, scopes, customers and expiry as `key_id`; the old
    one keeps working for `overlap` (0: stops at once), then expires. None: no such key, or it
    is revoked or expired already (nothing to rotate)."""
    if overlap < timedelta(0):
        raise ValueError("the overlap of a rotation cannot be negative")
    when = now or datetime.now(UTC)
    old = next((k for k in await list_keys(store) if k.id == key_id), None)
    if old is None or old.revoked or old.expired(when):
        return None
    info, key = await create_key(
        store, old.role, old.name, scopes=old.scopes, customers=old.customers,
        expires_at=old.expires_at, now=when, replaces=old.id,
    )  # fmt: skip
    await store.write(
        api_keys.EXPIRE_API_KEY,
        {"id": old.id, "at": _epoch_ms(when + overlap), "replacedBy": info.id},
    )
    return info, key


async def set_customer_ids(store: GraphStore, key_id: str, ids: list[str]) -> bool:
    """Replace the explicit list of customers of a key's customer scope; False: unknown key.
    A key holding `aggregates`, `write` or `admin` cannot be limited (`ValueError`)."""
    found = next((k for k in await list_keys(store) if k.id == key_id), None)
    if found is None:
        return False
    ids = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    customers = CustomerScope(found.customers.systems, found.customers.segments, tuple(ids))
    _check_scopes(found.scopes, customers)
    return bool(await store.write(api_keys.SET_CUSTOMER_IDS, {"id": key_id, "customerIds": ids}))


async def _with_last_use(store: GraphStore, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The keys' rows, `lastUsedAt` the later of the key's own and its note in the audit
    trail's graph, where FalkorDB keeps it (`api_keys.KEY_USED`)."""
    trail = store.audit_graph()
    if trail is store or not rows:
        return rows
    used = {
        r["id"]: r["at"]
        for r in await trail.read(api_keys.KEYS_USED, {"ids": [row["id"] for row in rows]})
    }
    return [
        {**row, "lastUsedAt": max(t for t in (row["lastUsedAt"], used[row["id"]]) if t is not None)}
        if used.get(row["id"]) is not None
        else row
        for row in rows
    ]


_noted: dict[str, int] = {}
"""When this process last noted each key's use (epoch ms): on FalkorDB the note is not on the key
read for every authentication, and reading it too would cost each request a round trip."""


async def _note_use(store: GraphStore, key_id: str, at: int) -> None:
    """That a key was used at `at`: on the key (Neo4j), or in the audit trail's graph
    (FalkorDB: a write to the customers' graph waits for every read of it before)."""
    trail = store.audit_graph()
    if trail is store:
        await store.write(api_keys.TOUCH_API_KEY, {"id": key_id, "at": at})
    else:
        await trail.write(api_keys.KEY_USED, {"id": key_id, "at": at})
    _noted[key_id] = at


async def list_keys(store: GraphStore) -> list[ApiKeyInfo]:
    """Every key, oldest first, revoked ones included."""
    return [
        _info(row) for row in await _with_last_use(store, await store.read(api_keys.LIST_API_KEYS))
    ]


async def revoke_key(store: GraphStore, key_id: str, *, now: datetime | None = None) -> bool:
    """Revoke a key at once; False when no key has this id. Revoking twice is harmless."""
    rows = await store.write(api_keys.REVOKE_API_KEY, {"id": key_id, "at": _epoch_ms(now)})
    return bool(rows)


async def authenticate(
    store: GraphStore, authorization_header: str | None, *, now: datetime | None = None
) -> Principal:
    """The principal of an `Authorization: Bearer crm_<id>_<secret>` header.

    Raises `AuthError("UNAUTHENTICATED", ...)` when the header is missing or malformed, or
    the key is unknown, wrong or revoked; store errors propagate (`graph.errors.StoreError`).
    """
    key = _bearer_token(authorization_header)
    match = _KEY_PATTERN.fullmatch(key)
    if match is None:
        raise AuthError("UNAUTHENTICATED", "malformed API key: expected crm_<id>_<secret>")
    key_id, secret = match["id"], match["secret"]
    rows = await store.read(api_keys.API_KEY_BY_ID, {"id": key_id})
    if not rows or not _secret_matches(secret, rows[0]["hash"]):
        raise AuthError("UNAUTHENTICATED", "invalid API key")
    stored = rows[0]
    if stored["revokedAt"] is not None:
        raise AuthError("UNAUTHENTICATED", "this API key has been revoked")
    at = _epoch_ms(now)
    if stored.get("expiresAt") is not None and stored["expiresAt"] <= at:
        raise AuthError("UNAUTHENTICATED", "this API key has expired")
    try:
        info = _info({**stored, "createdAt": stored.get("createdAt") or 0})
    except ValueError:
        raise AuthError("UNAUTHENTICATED", "this API key has no valid role or scopes") from None
    last_used = max(stored["lastUsedAt"] or 0, _noted.get(key_id, 0))
    if at - last_used >= LAST_USED_RESOLUTION_MS:
        await _note_use(store, key_id, at)
    return Principal(
        key_id=key_id, name=info.name, role=info.role, scopes=info.scopes,
        customers=info.customers, expires_at=info.expires_at,
    )  # fmt: skip


def _bearer_token(header: str | None) -> str:
    if header is None or not header.strip():
        raise AuthError("UNAUTHENTICATED", "missing API key: send Authorization: Bearer <key>")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("UNAUTHENTICATED", "malformed Authorization header: expected Bearer <key>")
    return token.strip()


def _digest(secret: str) -> str:
    return f"{HASH_SCHEME}:{hashlib.sha256(secret.encode()).hexdigest()}"


def _secret_matches(secret: str, stored_hash: Any) -> bool:
    if not isinstance(stored_hash, str):
        return False
    return hmac.compare_digest(stored_hash.encode(), _digest(secret).encode())


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {role!r}; expected one of {choices}") from None


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a key name has at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        raise ValueError("a key name must be printable text on one line")
    return name


def _epoch_ms(now: datetime | None) -> int:
    return int((now or datetime.now(UTC)).timestamp() * 1000)


def _instant(epoch_ms: Any) -> datetime | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC)


def _info(row: dict[str, Any]) -> ApiKeyInfo:
    created = _instant(row["createdAt"])
    assert created is not None, "an ApiKey without createdAt"
    role = Role(row["role"])
    stored_scopes = row.get("scopes")
    scopes = (
        frozenset(Scope(s) for s in stored_scopes) if stored_scopes else PRESETS[role.value]
    )  # keys made before scopes have their role's preset
    return ApiKeyInfo(
        id=row["id"],
        name=row["name"],
        role=role,
        created_at=created,
        revoked_at=_instant(row["revokedAt"]),
        last_used_at=_instant(row["lastUsedAt"]),
        scopes=scopes,
        customers=scope_of(
            row.get("customerSystems"), row.get("customerSegments"), row.get("customerIds")
        ),
        expires_at=_instant(row.get("expiresAt")),
        replaces=row.get("replaces"),
        replaced_by=row.get("replacedBy"),
    )
