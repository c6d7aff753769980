"""A token bucket per API key: `burst` requests at once, refilled at `rate_per_second`.

Buckets live in the process (one per key id that made a request, so as many as there are
keys); several server processes each limit on their own.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_RATE_PER_SECOND = 50.0
DEFAULT_BURST = 100


class RateLimitSettingsError(ValueError):
    """`CRM_GRAPH_RATE_LIMIT` or `CRM_GRAPH_RATE_BURST` is malformed; the message names it."""


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may go ahead; if not, how long until it could."""

    allowed: bool
    retry_after: float = 0.0
    """Seconds until a token is available (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` in whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after)))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Per-key token buckets. `clock` returns seconds (monotonic); tests inject their own."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate_per_second > 0 or math.isinf(rate_per_second):
            raise ValueError(f"rate_per_second must be a positive number, got {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate_per_second = float(rate_per_second)
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RateLimiter | None:
        """The limiter `CRM_GRAPH_RATE_LIMIT` (requests per second per key, default 50) and
        `CRM_GRAPH_RATE_BURST` (default 100) describe; None when either is 0 (no limit)."""
        env = os.environ if env is None else env
        rate = _setting(env, "CRM_GRAPH_RATE_LIMIT", DEFAULT_RATE_PER_SECOND, float)
        burst = _setting(env, "CRM_GRAPH_RATE_BURST", DEFAULT_BURST, int)
        if rate == 0 or burst == 0:
            return None
        return cls(rate, int(burst))

    def take(self, key: str) -> RateDecision:
        """Spend one of `key`'s tokens if it has one; nothing is spent when refused."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_second)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return RateDecision(allowed=True)
        return RateDecision(allowed=False, retry_after=(1.0 - bucket.tokens) / self.rate_per_second)


def _setting(
    env: Mapping[str, str], name: str, default: float, kind: type[int] | type[float]
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0 or math.isnan(value) or math.isinf(value):
        noun = "a whole number" if kind is int else "a number"
        raise RateLimitSettingsError(f"{name} must be {noun} ≥ 0 (0: no limit), got {raw!r}")
    return value
