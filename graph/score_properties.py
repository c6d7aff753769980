"""The customer properties `crm-graph train` writes back (part of the graph model: the API reads
them, the analytics write them), and how a value is encoded.

Every such property starts with `ml` (see `analytics.extract`: they are never read back as
features). Lists and maps are stored as JSON text, which both engines keep as a plain string;
`analytics.score_encoding` builds those texts for whole columns at once.
"""

from __future__ import annotations

import json
from typing import Any

RFM_RECENCY_DAYS = "mlRfmRecencyDays"
RFM_FREQUENCY = "mlRfmFrequency"
RFM_MONETARY = "mlRfmMonetary"
RFM_SCORE = "mlRfmScore"
RFM_SEGMENT = "mlRfmSegment"
CLV_PURCHASES = "mlClvPurchases"
CLV_VALUE = "mlClvValue"
CLV_ALIVE = "mlClvAlive"
CLV_HORIZON_DAYS = "mlClvHorizonDays"
CHURN_RISK = "mlChurnRisk"
CHURN_DRIVERS = "mlChurnDrivers"
PAGERANK = "mlPagerank"
COMMUNITY = "mlCommunity"
DEGREE = "mlDegree"
DEMAND = "mlDemand"
RECOMMENDATIONS = "mlRecommendations"
MODEL_VERSION = "mlModelVersion"
AS_OF = "mlAsOf"
SCORED_AT = "mlScoredAt"
SEGMENT_X = "mlSegmentX"
SEGMENT_Y = "mlSegmentY"
"""The customer's place in the segments map: the first two principal components of the scaled
features the segmentation was fitted on (`SegmentationModel.pca_2d`)."""

PROPERTIES = (
    RFM_RECENCY_DAYS, RFM_FREQUENCY, RFM_MONETARY, RFM_SCORE, RFM_SEGMENT,
    CLV_PURCHASES, CLV_VALUE, CLV_ALIVE, CLV_HORIZON_DAYS, CHURN_RISK, CHURN_DRIVERS,
    PAGERANK, COMMUNITY, DEGREE, DEMAND, RECOMMENDATIONS, MODEL_VERSION, AS_OF, SCORED_AT,
    SEGMENT_X, SEGMENT_Y,
)  # fmt: skip
"""Every score property, in the order they are written. A training writes them all on every
customer, removing (null) the ones it has no value for: a score left by an older training would
otherwise pass for this one's."""

SEGMENT_MODEL = "segments"
"""The `model` of the Segment nodes the segmentation writes (`IN_SEGMENT` to them)."""


def encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    """JSON for the numpy and pandas values metrics carry; non-finite floats become null."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict("records")
    if hasattr(value, "to_dict"):
        return {str(k): v for k, v in value.to_dict().items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def decode(text: Any, default: Any) -> Any:
    if not isinstance(text, str):
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default
