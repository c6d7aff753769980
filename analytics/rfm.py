"""RFM: how recently, how often and how much each customer buys, as of a date.

`rfm(orders, as_of)` turns the orders table (see `analytics.frames.ORDERS`) into one row per
customer with the raw measures, a score of 1..bins for each, the three scores as a code such as
"545", and a readable segment name from `SEGMENT_RULES`.

Only orders placed strictly before `as_of` count (as everywhere in `analytics`: what is known as
of `as_of` is what happened before it); orders at or after it are ignored, so the same call gives
the same answer whenever it runs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from crm_graph.analytics.frames import require, utc

RFM_COLUMNS = (
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_score",
    "rfm_segment",
)
"""The columns `rfm` returns, in order."""


class SegmentRule(NamedTuple):
    """A segment holds the customers whose recency and frequency levels (1..5) fall in these
    inclusive ranges."""

    name: str
    recency_levels: tuple[int, int]
    frequency_levels: tuple[int, int]


SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule("champions", (5, 5), (4, 5)),
    SegmentRule("loyal", (3, 4), (4, 5)),
    SegmentRule("potential loyalists", (4, 5), (2, 3)),
    SegmentRule("new", (5, 5), (1, 1)),
    SegmentRule("promising", (4, 4), (1, 1)),
    SegmentRule("need attention", (3, 3), (3, 3)),
    SegmentRule("about to sleep", (3, 3), (1, 2)),
    SegmentRule("cannot lose them", (1, 2), (5, 5)),
    SegmentRule("at risk", (1, 2), (3, 4)),
    SegmentRule("hibernating", (1, 2), (1, 2)),
)
"""The segment rule table, on a 1..5 scale of recency level (R) and frequency level (F):

| segment             | R   | F   | who they are                                        |
|---------------------|-----|-----|-----------------------------------------------------|
| champions           | 5   | 4-5 | bought very recently and buy often                  |
| loyal               | 3-4 | 4-5 | buy often, bought fairly recently                   |
| potential loyalists | 4-5 | 2-3 | recent, a few orders already                        |
| new                 | 5   | 1   | first order very recently                           |
| promising           | 4   | 1   | one recent order                                    |
| need attention      | 3   | 3   | middling on both                                    |
| about to sleep      | 3   | 1-2 | few orders, not so recent                           |
| cannot lose them    | 1-2 | 5   | used to buy the most, long silent                   |
| at risk             | 1-2 | 3-4 | bought regularly, long silent                       |
| hibernating         | 1-2 | 1-2 | few orders, long ago                                |

Every one of the 25 (R, F) cells has exactly one segment. The monetary score does not decide
the segment (it is in `rfm_score`). With `bins` other than 5, a score is mapped to the 1..5
level holding the middle of its quantile band: level = 1 + floor(5 * (score - 0.5) / bins).
"""


def rfm(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    customer_col: str = "customer_id",
    at_col: str = "at",
    value_col: str = "total",
    bins: int = 5,
) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer as of `as_of`, scored and segmented.

    Returns a frame indexed by customer id (sorted) with:

    - `recency_days`: days (fractional) from the customer's last order to `as_of`;
    - `frequency`: number of orders (rows) placed before `as_of`;
    - `monetary`: the mean order value over those orders (not the total);
    - `r_score`, `f_score`, `m_score`: 1..bins, higher is better (a shorter recency is better);
    - `rfm_score`: the three scores as text, e.g. "545";
    - `rfm_segment`: the segment name from `SEGMENT_RULES`.

    Scores are quantile-based and do not depend on row order or customer ids: a customer's score
    is 1 + floor(bins * share of customers with a strictly worse value), so customers with equal
    values always share a score, and the best customer of five or more distinct ones scores
    `bins`. When everybody ties, everybody scores 1.

    Only orders strictly before `as_of` count: orders at or after it are ignored. Customers with
    no order before `as_of` are not in the result (they have no recency to speak of). A naive
    `as_of` or naive timestamps are read as UTC.
    """
    require(orders, (customer_col, at_col, value_col), "orders")
    if not 2 <= bins <= 9:
        raise ValueError(f"bins must be between 2 and 9 (one digit per score), got {bins}")
    as_of = utc(as_of)
    at = pd.to_datetime(orders[at_col], utc=True)
    history = pd.DataFrame(
        {
            "customer": orders[customer_col].reset_index(drop=True),
            "at": at.reset_index(drop=True),
            "value": pd.to_numeric(orders[value_col]).astype(float).reset_index(drop=True),
        }
    )
    history = history[history["at"].lt(as_of) & history["customer"].notna()]
    grouped = history.groupby("customer", sort=True)
    measures = pd.DataFrame(
        {
            "recency_days": (as_of - grouped["at"].max()) / pd.Timedelta(days=1),
            "frequency": grouped.size().astype("int64"),
            "monetary": grouped["value"].mean(),
        }
    )
    measures.index.name = customer_col
    r_score = _score(-measures["recency_days"], bins)
    f_score = _score(measures["frequency"], bins)
    m_score = _score(measures["monetary"], bins)
    result = measures.assign(r_score=r_score, f_score=f_score, m_score=m_score)
    result["rfm_score"] = pd.Series(
        [f"{r}{f}{m}" for r, f, m in zip(r_score, f_score, m_score, strict=True)],
        index=result.index,
        dtype="str",
    )
    result["rfm_segment"] = pd.Series(
        [segment_name(r, f, bins) for r, f in zip(r_score, f_score, strict=True)],
        index=result.index,
        dtype="str",
    )
    return result.loc[:, list(RFM_COLUMNS)]


def segment_name(r_score: int, f_score: int, bins: int = 5) -> str:
    """The segment of a customer with these recency and frequency scores (see `SEGMENT_RULES`)."""
    r_level, f_level = _level(r_score, bins), _level(f_score, bins)
    for rule in SEGMENT_RULES:
        r_low, r_high = rule.recency_levels
        f_low, f_high = rule.frequency_levels
        if r_low <= r_level <= r_high and f_low <= f_level <= f_high:
            return rule.name
    raise ValueError(f"scores out of range 1..{bins}: r={r_score}, f={f_score}")


def _level(score: int, bins: int) -> int:
    return 1 + math.floor(5 * (score - 0.5) / bins)


def _score(values: pd.Series, bins: int) -> pd.Series:
    """1 + floor(bins * share of customers with a strictly smaller value); NaN scores 1."""
    n = len(values)
    if n == 0:
        return pd.Series([], index=values.index, dtype="int64")
    filled = values.fillna(-np.inf)
    strictly_below = filled.rank(method="min").to_numpy() - 1
    scores = 1 + np.floor(bins * strictly_below / n).astype("int64")
    return pd.Series(np.minimum(scores, bins), index=values.index, dtype="int64")
