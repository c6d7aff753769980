"""Aggregates for analysts, and segments."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from api.customers.types import Segment
from api.permissions import CanAggregate
from api.scalars import to_epoch_ms
from graph import aggregates
from graph.customers import SEGMENTS


@strawberry.enum
class RevenueDimension(enum.Enum):
    MONTH = "MONTH"
    CATEGORY = "CATEGORY"
    COUNTRY = "COUNTRY"
    SEGMENT = "SEGMENT"


@strawberry.type(description="Revenue, orders and distinct customers of one bucket.")
class RevenueBucket:
    key: str = strawberry.field(description="2024-03, a category, a country code, a segment.")
    revenue: float
    orders: int
    customers: int


@strawberry.type(description="A segment with its size.")
class SegmentSummary(Segment):
    size: int


@strawberry.type
class InsightQueries:
    @strawberry.field(
        description="Revenue by month, category, country or segment over [from, to).",
        permission_classes=[CanAggregate],
    )
    async def revenue(
        self,
        info: Info,
        by: RevenueDimension,
        since: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        until: Annotated[datetime | None, strawberry.argument(name="to")] = None,
    ) -> list[RevenueBucket]:
        rows = await aggregates.revenue(
            info.context.store, by.value, to_epoch_ms(since), to_epoch_ms(until)
        )
        return [
            RevenueBucket(
                key=str(r["key"]),
                revenue=float(r["revenue"] or 0.0),
                orders=int(r["orders"]),
                customers=int(r["customers"]),
            )
            for r in rows
        ]

    @strawberry.field(description="Segments and their sizes.", permission_classes=[CanAggregate])
    async def segments(self, info: Info) -> list[SegmentSummary]:
        rows = await info.context.store.read(SEGMENTS)
        return [
            SegmentSummary(
                id=strawberry.ID(r["segment"]["id"]),
                name=r["segment"].get("name"),
                model=r["segment"].get("model"),
                size=int(r["size"]),
            )
            for r in rows
        ]
