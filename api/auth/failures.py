"""Failed authentication limited per client address.

A client address that sent `burst` requests with a missing, malformed, unknown or revoked key
(refilled at `per_minute`) gets 429 for the next ones, before the key is looked up in the store:
600 unknown keys in 3.7 s were 600 store look-ups. Requests with a valid key are never counted.
The addresses are kept in the process, at most `MAX_ADDRESSES` of them (the longest quiet go
first). An address over its limit is not cut off from keys that worked recently (from any
address: `vouch`): those still go to the store, so a flood from behind a shared address does not
lock out the valid keys sent from it, and a revoked one is still refused there.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from crm_graph.api.auth.ratelimit import RateDecision
from crm_graph.api.settings import default

if TYPE_CHECKING:
    from crm_graph.api.settings import Settings

DEFAULT_FAILURES_PER_MINUTE: float = default("auth_failures")
DEFAULT_FAILURE_BURST: int = default("auth_failure_burst")
MAX_ADDRESSES = 100_000


class FailedAuthLimiter:
    """Per-address token buckets of failed authentications. `clock`: monotonic seconds."""

    def __init__(
        self,
        per_minute: float = DEFAULT_FAILURES_PER_MINUTE,
        burst: int = DEFAULT_FAILURE_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not per_minute > 0 or math.isinf(per_minute):
            raise ValueError(f"per_minute must be a positive number, got {per_minute}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._vouched: OrderedDict[bytes, None] = OrderedDict()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FailedAuthLimiter | None:
        """`CRM_GRAPH_AUTH_FAILURES` (failed authentications per minute per address, default
        30; 0: no limit) and `CRM_GRAPH_AUTH_FAILURE_BURST` (default 20)."""
        from crm_graph.api.settings import read

        values = read(env, ("auth_failures", "auth_failure_burst"))
        return cls.from_limits(
            values.get("auth_failures", DEFAULT_FAILURES_PER_MINUTE),
            values.get("auth_failure_burst", DEFAULT_FAILURE_BURST),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> FailedAuthLimiter | None:
        """The limiter the settings describe; None when the failures per minute are 0."""
        return cls.from_limits(settings.auth_failures, settings.auth_failure_burst)

    @classmethod
    def from_limits(cls, per_minute: float, burst: int) -> FailedAuthLimiter | None:
        return None if per_minute == 0 else cls(per_minute, burst)

    def _tokens(self, address: str) -> float:
        now = self._clock()
        tokens, updated = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - updated) * self.rate)

    def check(self, address: str) -> RateDecision:
        """Whether `address` may try a key now (it has a failure left to spend)."""
        tokens = self._tokens(address)
        if tokens >= 1.0:
            return RateDecision(allowed=True)
        return RateDecision(allowed=False, retry_after=(1.0 - tokens) / self.rate)

    def failed(self, address: str) -> None:
        """Count one failed authentication of `address`."""
        tokens = max(0.0, self._tokens(address) - 1.0)
        self._buckets[address] = (tokens, self._clock())
        self._buckets.move_to_end(address)
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)

    def vouch(self, credential: str) -> None:
        """`credential` (the Authorization header) authenticated: let it through a block."""
        digest = hashlib.sha256(credential.encode()).digest()
        self._vouched[digest] = None
        self._vouched.move_to_end(digest)
        while len(self._vouched) > MAX_ADDRESSES:
            self._vouched.popitem(last=False)

    def vouched(self, credential: str | None) -> bool:
        if not credential:
            return False
        return hashlib.sha256(credential.encode()).digest() in self._vouched
