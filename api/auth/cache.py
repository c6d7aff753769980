"""A short-lived, per-process cache of authenticated keys: the key look-up is a store round trip
(1-2 ms of the store's and the server's time on Neo4j), and a client sends the same key with
every request.

What it promises about revocation: an answer served from the cache comes from a look-up that
*started* less than `ttl` seconds earlier. A revoke (`crm-graph keys revoke`, from any process)
that has returned therefore takes effect on every server process within `ttl` seconds (default
`DEFAULT_TTL_SECONDS`, `CRM_GRAPH_KEY_CACHE_SECONDS`; 0 turns the cache off and every request
looks its key up). Only successful look-ups are kept: an unknown, wrong or revoked key is looked
up again on every request, so a key that was just created works at once. Entries are keyed by a
SHA-256 digest of the whole `Authorization` header (never the secret itself) and bounded in
number (`max_entries`): expired ones are dropped first, then the oldest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from crm_graph.api.auth.keys import authenticate
from crm_graph.api.auth.principal import Principal
from crm_graph.graph.store import GraphStore

DEFAULT_TTL_SECONDS = 1.0
"""How long a look-up's answer is reused: a revoke takes effect on every process within it.
At 300 requests/s with one key, the look-up then costs one round trip a second instead of 300."""
MAX_TTL_SECONDS = 60.0
"""Above this a revoke would wait too long: the setting is refused."""
DEFAULT_MAX_ENTRIES = 10_000
TTL_VARIABLE = "CRM_GRAPH_KEY_CACHE_SECONDS"

Authenticate = Callable[[GraphStore, str | None], Awaitable[Principal]]


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    fresh_until: float


class KeyCache:
    """`authenticate`, remembered for `ttl` seconds per `Authorization` header."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        look_up: Authenticate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= ttl <= MAX_TTL_SECONDS:
            raise ValueError(f"the key cache's ttl must be 0 to {MAX_TTL_SECONDS:g} seconds")
        if max_entries < 1:
            raise ValueError("the key cache needs room for at least one entry")
        self.ttl = ttl
        self.max_entries = max_entries
        self._look_up = look_up or _authenticate
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}
        self.hits = 0
        self.misses = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KeyCache:
        """`CRM_GRAPH_KEY_CACHE_SECONDS` (default 1; 0 turns the cache off)."""
        from crm_graph.api.settings import read

        values = read(env, ("key_cache_seconds",))
        return cls(values.get("key_cache_seconds", DEFAULT_TTL_SECONDS))

    async def authenticate(self, store: GraphStore, authorization_header: str | None) -> Principal:
        """What `keys.authenticate` answers, or answered less than `ttl` seconds ago."""
        if self.ttl == 0 or not authorization_header:
            return await self._look_up(store, authorization_header)
        digest = hashlib.sha256(authorization_header.encode("utf-8", "surrogatepass")).digest()
        started = self._clock()
        entry = self._entries.get(digest)
        if entry is not None and started < entry.fresh_until:
            self.hits += 1
            return entry.principal
        self.misses += 1
        principal = await self._look_up(store, authorization_header)  # errors are not kept
        self._entries.pop(digest, None)
        if len(self._entries) >= self.max_entries:
            self._make_room()
        ttl = self.ttl
        if principal.expires_at is not None:  # never past the key's own expiry
            ttl = min(ttl, (principal.expires_at - datetime.now(UTC)).total_seconds())
        self._entries[digest] = _Entry(principal, started + ttl)
        return principal

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _make_room(self) -> None:
        now = self._clock()
        for digest in [d for d, e in self._entries.items() if e.fresh_until <= now]:
            del self._entries[digest]
        while len(self._entries) >= self.max_entries:  # the oldest go first (insertion order)
            del self._entries[next(iter(self._entries))]


async def _authenticate(store: GraphStore, authorization_header: str | None) -> Principal:
    return await authenticate(store, authorization_header)
