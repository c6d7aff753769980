"""The customer properties `crm-graph train` writes back, and how they are encoded.

Every such property starts with `ml` (see `analytics.extract`: they are never read back as
features). Lists and maps are stored as JSON text, which both engines keep as a plain string.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the API imports this module for the names: no pandas in the server
    import pandas as pd

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


def encode_groups(keys: Sequence[Any], fragments: Sequence[str], brackets: str = "[]") -> pd.Series:
    """One JSON text per distinct key (in order of first appearance): its `fragments` (JSON
    values, or `"name":value` members with `brackets="{}"`) in their order, joined. The same
    text as `encode` of the list or map, built without one `encode` call per key."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(keys, dtype=object), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1)).tolist()
    ordered = [fragments[i] for i in order.tolist()]
    opening, closing = brackets[:1], brackets[1:]
    texts = [opening + ",".join(ordered[a:b]) + closing
             for a, b in itertools.pairwise(bounds)]  # fmt: skip
    return pd.Series(texts, index=pd.Index(uniques), dtype=object)


def encode_demand(chances: pd.Series) -> pd.Series:
    """Per customer, `{"category": probability}` (4 decimals) from a (customer, category)
    indexed Series of chances."""
    categories = chances.index.get_level_values(1)
    keys = {c: encode(str(c)) + ":" for c in categories.unique()}
    members = [keys[c] + _number(p, 4)
               for c, p in zip(categories, chances.to_numpy().tolist(), strict=True)]  # fmt: skip
    return encode_groups(chances.index.get_level_values(0), members, "{}")


def _number(value: float, digits: int) -> str:
    """`encode(round(value, digits))`: a finite float's JSON is its repr (null otherwise)."""
    rounded = round(float(value), digits)
    return repr(rounded) if math.isfinite(rounded) else "null"


def encode_recommendations(suggested: pd.DataFrame) -> pd.Series:
    """Per customer, the list of `{"productId", "score", "reasons"}` of `Recommender.recommend`
    output, in its order."""
    said: dict[str, str] = {}  # each distinct id and sentence encoded once

    def text(value: str) -> str:
        if value not in said:
            said[value] = encode(value)
        return said[value]

    items = [
        f'{{"productId":{text(str(p))},"score":{_number(s, 6)},'
        f'"reasons":[{",".join([text(r) for r in reasons])}]}}'
        for p, s, reasons in zip(suggested["product_id"], suggested["score"],
                                 suggested["reasons"], strict=True)
    ]  # fmt: skip
    return encode_groups(suggested["customer_id"].to_numpy(), items)
