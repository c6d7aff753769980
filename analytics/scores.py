"""The customer properties `crm-graph train` writes back, and how they are encoded.

Every such property starts with `ml` (see `analytics.extract`: they are never read back as
features). Lists and maps are stored as JSON text, which both engines keep as a plain string.
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
