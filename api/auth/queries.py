"""`rateLimit`: what the request costs and what the caller's key has left, as GitHub's
GraphQL API answers it (the same figures as `extensions.cost` and the `X-RateLimit-*`
headers)."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from strawberry.types import Info


@strawberry.type(
    description="The caller's rate limit: points per window, spent by each query's cost."
)
class RateLimit:
    cost: int = strawberry.field(description="Points this request costs (`extensions.cost`).")
    maximum_cost: int = strawberry.field(description="The most points one request may cost.")
    limit: int | None = strawberry.field(
        description="Points per window for the key; null when rate limits are off."
    )
    remaining: int | None = strawberry.field(description="Points left after this request.")
    reset_at: datetime | None = strawberry.field(
        description="When the key's points are whole again."
    )


@strawberry.type
class RateLimitQueries:
    @strawberry.field(description="What this request costs and what the key has left.")
    def rate_limit(self, info: Info) -> RateLimit | None:
        report = info.context.cost
        if report is None:
            return None
        return RateLimit(
            cost=report.requested,
            maximum_cost=report.maximum,
            limit=report.limit,
            remaining=report.remaining,
            reset_at=(
                None if report.reset_at is None else datetime.fromtimestamp(report.reset_at, UTC)
            ),
        )
