"""Aggregates for analysts, and segments."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from crm_graph.api.customers.types import Customer, Segment, check_first
from crm_graph.api.errors import user_error
from crm_graph.api.permissions import CanAggregate
from crm_graph.api.scalars import from_epoch_ms, to_epoch_ms
from crm_graph.graph import aggregates, analytics_queries, score_properties
from crm_graph.graph.customer_reads import SEGMENTS


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


@strawberry.type(description="A segment with its size and profile.")
class SegmentSummary(Segment):
    size: int
    profile: JSON | None = strawberry.field(
        description="The segment's mean features (from the segmentation model)."
    )


@strawberry.type(description="A community of the social graph (Louvain).")
class Community:
    id: int
    size: int
    churn_risk: float | None = strawberry.field(description="Mean churn risk of its members.")
    revenue: float = strawberry.field(description="Sum of its members' orders' totals.")

    @strawberry.field(description="Members, most influential first.")
    async def members(self, info: Info, first: int = 10) -> list[Customer]:
        check_first(first, "members.first")
        rows = await info.context.store.read(
            analytics_queries.COMMUNITY_MEMBERS, {"ids": [self.id], "first": first}
        )
        return [Customer.from_props(m) for r in rows for m in r["members"]]


@strawberry.type(description="How many customers' churn risk lies in [low, high).")
class RiskBucket:
    low: float
    high: float
    customers: int


@strawberry.type(description="One customer in the segments map.")
class SegmentPoint:
    customer_id: strawberry.ID
    name: str | None
    x: float = strawberry.field(description="First principal component.")
    y: float = strawberry.field(description="Second principal component.")
    segment_id: strawberry.ID


MAX_MAP_POINTS = 20_000


@strawberry.type(description="The 2-D picture of the last segmentation.")
class SegmentMap:
    points: list[SegmentPoint] = strawberry.field(
        description="At most `sample` customers, every n-th by id when there are more."
    )
    total: int = strawberry.field(description="Customers in the picture in all.")
    explained_variance: list[float] = strawberry.field(
        description="Share of the variance each axis explains."
    )
    model_version: str | None


@strawberry.type(description="A trained model: what it is, when, on what, how well.")
class ModelCard:
    id: str
    name: str
    version: str
    as_of: datetime | None
    trained_at: datetime | None
    metrics: JSON
    params: JSON
    notes: str | None


def _card(props: dict[str, Any]) -> ModelCard:
    return ModelCard(
        id=props["id"],
        name=props.get("name", ""),
        version=props.get("version", ""),
        as_of=from_epoch_ms(props.get("asOf")),
        trained_at=from_epoch_ms(props.get("trainedAt")),
        metrics=score_properties.decode(props.get("metrics"), {}),
        params=score_properties.decode(props.get("params"), {}),
        notes=props.get("notes"),
    )


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
                profile=score_properties.decode(r["segment"].get("profile"), None),
            )
            for r in rows
        ]

    @strawberry.field(
        description="The most influential customers (PageRank in the social graph).",
        permission_classes=[CanAggregate],
    )
    async def influencers(self, info: Info, first: int = 10) -> list[Customer]:
        check_first(first, "influencers.first")
        rows = await info.context.store.read(analytics_queries.INFLUENCERS, {"first": first})
        return [Customer.from_props(r["customer"]) for r in rows]

    @strawberry.field(
        description="Communities of the social graph, largest first.",
        permission_classes=[CanAggregate],
    )
    async def communities(self, info: Info, first: int = 20) -> list[Community]:
        check_first(first, "communities.first")
        rows = await info.context.store.read(analytics_queries.COMMUNITIES, {"first": first})
        return [
            Community(
                id=int(r["community"]),
                size=int(r["size"]),
                churn_risk=r["churnRisk"],
                revenue=float(r["revenue"] or 0.0),
            )
            for r in rows
        ]

    @strawberry.field(
        description="How many customers fall in each equal slice of churn risk over [0, 1] "
        "(from the last training), lowest first.",
        permission_classes=[CanAggregate],
    )
    async def churn_risk_distribution(self, info: Info, buckets: int = 10) -> list[RiskBucket]:
        if not 1 <= buckets <= 100:
            raise user_error(
                "buckets must be between 1 and 100", field="churnRiskDistribution.buckets"
            )
        rows = await aggregates.churn_risk_distribution(info.context.store, buckets)
        return [RiskBucket(low=r["low"], high=r["high"], customers=r["customers"]) for r in rows]

    @strawberry.field(
        description="The customers most likely to stop buying (churn risk of the last "
        "training), highest first.",
        permission_classes=[CanAggregate],
    )
    async def most_at_risk(self, info: Info, first: int = 10) -> list[Customer]:
        check_first(first, "mostAtRisk.first")
        rows = await info.context.store.read(analytics_queries.MOST_AT_RISK, {"first": first})
        return [Customer.from_props(r["customer"]) for r in rows]

    @strawberry.field(
        description="The segments map: each segmented customer's place in the 2-D picture "
        "(principal components) of the last segmentation, at most `sample` of them.",
        permission_classes=[CanAggregate],
    )
    async def segment_map(self, info: Info, sample: int = 2000) -> SegmentMap:
        if not 1 <= sample <= MAX_MAP_POINTS:
            raise user_error(
                f"sample must be between 1 and {MAX_MAP_POINTS}", field="segmentMap.sample"
            )
        found = await aggregates.segment_map(
            info.context.store, score_properties.SEGMENT_MODEL, sample
        )
        card = found["card"] or {}
        variance = score_properties.decode(card.get("metrics"), {}).get("explainedVariance") or []
        return SegmentMap(
            points=[
                SegmentPoint(
                    customer_id=strawberry.ID(r["id"]),
                    name=r["name"],
                    x=float(r["x"]),
                    y=float(r["y"]),
                    segment_id=strawberry.ID(r["segment"]),
                )
                for r in found["points"]
            ],
            total=found["total"],
            explained_variance=[float(v) for v in variance],
            model_version=card.get("version"),
        )

    @strawberry.field(
        description="The trained models, newest first, with their metrics (counts and "
        "distributions over all customers: not for partner keys).",
        permission_classes=[CanAggregate],
    )
    async def model_cards(self, info: Info) -> list[ModelCard]:
        rows = await info.context.store.read(analytics_queries.MODEL_CARDS)
        return [_card(r["card"]) for r in rows]
