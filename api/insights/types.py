"""The analytics on a customer: scores written by `crm-graph train`, read as typed fields."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import strawberry

from crm_graph.api.scalars import from_epoch_ms
from crm_graph.graph import score_properties


@strawberry.type(description="Recency, frequency, monetary value as of the last training.")
class Rfm:
    recency_days: float | None
    frequency: int | None
    monetary: float | None = strawberry.field(description="Mean order value.")
    score: str | None = strawberry.field(description="Three digits, e.g. 545 (5 is best).")
    segment: str | None = strawberry.field(description="champions, loyal, at risk, ...")


@strawberry.type(
    description="Customer lifetime value over the model's horizon (BG/NBD with Gamma-Gamma)."
)
class Clv:
    expected_purchases: float | None
    expected_value: float | None
    probability_alive: float | None
    horizon_days: int | None


@strawberry.type
class ChurnDriver:
    feature: str
    contribution: float = strawberry.field(description="How much it raises the risk.")


@strawberry.type(description="The probability the customer stops buying within the horizon.")
class ChurnRisk:
    score: float
    drivers: list[ChurnDriver]
    model_version: str | None
    as_of: datetime | None


@strawberry.type(description="The probability of buying a category within the horizon.")
class CategoryDemand:
    category: str
    probability: float


def rfm_of(props: dict[str, Any]) -> Rfm | None:
    if props.get(score_properties.RFM_SCORE) is None:
        return None
    return Rfm(
        recency_days=props.get(score_properties.RFM_RECENCY_DAYS),
        frequency=props.get(score_properties.RFM_FREQUENCY),
        monetary=props.get(score_properties.RFM_MONETARY),
        score=props.get(score_properties.RFM_SCORE),
        segment=props.get(score_properties.RFM_SEGMENT),
    )


def clv_of(props: dict[str, Any]) -> Clv | None:
    if props.get(score_properties.CLV_PURCHASES) is None:
        return None
    return Clv(
        expected_purchases=props.get(score_properties.CLV_PURCHASES),
        expected_value=props.get(score_properties.CLV_VALUE),
        probability_alive=props.get(score_properties.CLV_ALIVE),
        horizon_days=props.get(score_properties.CLV_HORIZON_DAYS),
    )


def stored_number(value: Any) -> float | None:
    """A stored score as a float, or None when it is missing or malformed (a score written by
    something else than the analytics must not make the field fail for everyone)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _drivers(stored: Any) -> list[ChurnDriver]:
    found: list[ChurnDriver] = []
    decoded = score_properties.decode(stored, [])
    for d in decoded if isinstance(decoded, list) else []:
        contribution = stored_number(d.get("contribution")) if isinstance(d, dict) else None
        if contribution is not None and isinstance(d.get("feature"), str):
            found.append(ChurnDriver(feature=d["feature"], contribution=contribution))
    return found


def churn_of(props: dict[str, Any]) -> ChurnRisk | None:
    score = stored_number(props.get(score_properties.CHURN_RISK))
    if score is None:
        return None
    as_of = props.get(score_properties.AS_OF)
    return ChurnRisk(
        score=score,
        drivers=_drivers(props.get(score_properties.CHURN_DRIVERS)),
        model_version=props.get(score_properties.MODEL_VERSION),
        as_of=from_epoch_ms(as_of) if stored_number(as_of) is not None else None,
    )


def demand_of(props: dict[str, Any], category: str | None) -> list[CategoryDemand]:
    found = score_properties.decode(props.get(score_properties.DEMAND), {})
    items = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    return [
        CategoryDemand(category=c, probability=float(p))
        for c, p in items
        if category is None or c == category
    ]
