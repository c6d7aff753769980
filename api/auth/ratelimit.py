"""A token bucket per API key: `burst` requests at once, refilled at `rate_per_second`.

Buckets live in the process (one per key id that made a request, so as many as there are
keys); several server processes each limit on their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm_graph.api.settings import SettingsError, default

if TYPE_CHECKING:
    from crm_graph.api.settings import Settings

DEFAULT_RATE_PER_SECOND: float = default("rate_limit")
DEFAULT_BURST: int = default("rate_burst")


RateLimitSettingsError = SettingsError
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
    def from_env(cls, env: Mapping[str, str]) -> RateLimiter | None:
        """The limiter `CRM_GRAPH_RATE_LIMIT` (requests per second per key, default 50) and
        `CRM_GRAPH_RATE_BURST` (default 100) describe; None when either is 0 (no limit)."""
        from crm_graph.api.settings import read

        values = read(env, ("rate_limit", "rate_burst"))
        rate = values.get("rate_limit", DEFAULT_RATE_PER_SECOND)
        burst = values.get("rate_burst", DEFAULT_BURST)
        return cls.from_limits(rate, burst)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter | None:
        """The limiter the settings describe; None when either limit is 0 (no limit)."""
        return cls.from_limits(settings.rate_limit, settings.rate_burst)

    @classmethod
    def from_limits(cls, rate_per_second: float, burst: int) -> RateLimiter | None:
        if rate_per_second == 0 or burst == 0:
            return None
        return cls(rate_per_second, burst)

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


DEFAULT_POINTS: int = default("rate_points")
DEFAULT_WINDOW_SECONDS: float = default("rate_window")


@dataclass(frozen=True)
class PointsStatus:
    """A key's points after a charge (or a look): what `X-RateLimit-*` and `rateLimit` say."""

    limit: int
    remaining: int
    reset_at: float
    """Unix time (seconds) at which the key's points are whole again."""
    cost: int = 0
    allowed: bool = True
    retry_after: float = 0.0
    """Seconds until the key has the points a refused request costs (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_at)).encode()),
        ]


class PointsLimiter:
    """Per-key points, as GitHub's GraphQL rate limit: each request spends what it costs
    (`crm_graph.api.cost`, at least 1 point) out of `points` per `window_seconds`, refilled
    continuously. A request costing more than the key has left is refused before it runs, and
    spends nothing. `clock` is monotonic seconds; tests inject their own."""

    def __init__(
        self,
        points: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if points < 1:
            raise ValueError(f"points must be at least 1, got {points}")
        if not window_seconds > 0 or math.isinf(window_seconds):
            raise ValueError(f"window_seconds must be a positive number, got {window_seconds}")
        self.points = points
        self.window_seconds = float(window_seconds)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PointsLimiter | None:
        """`CRM_GRAPH_RATE_POINTS` (points per window per key, default 1,000,000; 0: no limit)
        and `CRM_GRAPH_RATE_WINDOW` (seconds, default 60)."""
        from crm_graph.api.settings import read

        values = read(env, ("rate_points", "rate_window"))
        return cls.from_limits(
            values.get("rate_points", DEFAULT_POINTS),
            values.get("rate_window", DEFAULT_WINDOW_SECONDS),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PointsLimiter | None:
        """The limiter the settings describe; None when the points are 0 (no limit)."""
        return cls.from_limits(settings.rate_points, settings.rate_window)

    @classmethod
    def from_limits(cls, points: int, window_seconds: float) -> PointsLimiter | None:
        return None if points == 0 else cls(points, window_seconds)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.points), updated=now)
        else:
            rate = self.points / self.window_seconds
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.points), bucket.tokens + elapsed * rate)
            bucket.updated = now
        return bucket

    def _status(self, bucket: _Bucket, cost: int, allowed: bool) -> PointsStatus:
        per_point = self.window_seconds / self.points
        return PointsStatus(
            limit=self.points,
            remaining=int(bucket.tokens),
            reset_at=time.time() + (self.points - bucket.tokens) * per_point,
            cost=cost,
            allowed=allowed,
            retry_after=0.0 if allowed else (cost - bucket.tokens) * per_point,
        )

    def look(self, key: str) -> PointsStatus:
        return self._status(self._refilled(key), 0, True)

    def charge(self, key: str, cost: int) -> PointsStatus:
        """Spend `cost` (at least 1) of `key`'s points if it has them; nothing when refused."""
        cost = max(1, cost)
        bucket = self._refilled(key)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return self._status(bucket, cost, True)
        return self._status(bucket, cost, False)
