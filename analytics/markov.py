"""Markov churn outlook: where customers stand each period, how they moved from one period to
the next before `as_of`, and how many are expected in each state in the periods ahead.

The states of a customer in a period t, with k = `at_risk_periods` (k >= 1):

- `active`: bought in period t;
- `at_risk`: did not buy in t, but did in one of the k periods before it (t-k .. t-1);
- `churned`: no purchase in the last k + 1 periods (t-k .. t).

A customer enters in the period of their first purchase (so active); before it they are in no
state and not counted. A churned customer who buys again is active again (churn is not final).

Periods are calendar months (`period="M"`, UTC) or blocks of a number of days (`period=7`)
ending at `as_of`: [as_of - 7 days, as_of), the block before, and so on. Only complete periods
count, those that end at or before `as_of`: a month is used once `as_of` is at or after the first
instant of the next month (pass 1 April to include March), and orders in the period still under
way at `as_of` (or later) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from crm_graph.analytics.frames import require, utc

STATES = ("active", "at_risk", "churned")
"""The states, in the order of the matrix rows and columns."""

_ABSENT = -1
_ACTIVE, _AT_RISK, _CHURNED = 0, 1, 2

Period = str | int | float


def customer_states(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    period: Period = "M",
    lookback_periods: int | None = None,
    at_risk_periods: int = 2,
    customer_col: str = "customer_id",
    at_col: str = "at",
) -> pd.DataFrame:
    """Each customer's state in each complete period before `as_of`.

    Returns a frame indexed by customer id with one column per period (labelled by the period's
    first instant, oldest first; the last `lookback_periods` + 1 periods, or all since the first
    order) holding "active", "at_risk", "churned", or missing before the customer's first
    purchase. Customers who entered after the shown periods are not in it.
    """
    codes, customers, labels = _state_codes(
        orders, as_of, period, lookback_periods, at_risk_periods, customer_col, at_col
    )
    names = np.array([*STATES, None], dtype=object)  # code -1 picks the last: None
    states = pd.DataFrame(names[codes], index=customers, columns=labels)
    return states[(codes != _ABSENT).any(axis=1)]


def state_counts(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    period: Period = "M",
    at_risk_periods: int = 2,
    customer_col: str = "customer_id",
    at_col: str = "at",
) -> pd.Series:
    """How many customers are in each state in the last complete period before `as_of` (the
    usual `start_counts` of `project`)."""
    codes, _, _ = _state_codes(orders, as_of, period, 0, at_risk_periods, customer_col, at_col)
    last = codes[:, -1] if codes.shape[1] else np.array([], dtype=int)
    counts = np.bincount(last[last != _ABSENT], minlength=len(STATES))
    return pd.Series(counts, index=pd.Index(STATES, name="state"), name="customers")


def transition_counts(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    period: Period = "M",
    lookback_periods: int | None = None,
    at_risk_periods: int = 2,
    customer_col: str = "customer_id",
    at_col: str = "at",
) -> pd.DataFrame:
    """How many customers moved from each state (rows) to each state (columns) from one period
    to the next, over the transitions into the last `lookback_periods` complete periods before
    `as_of` (all of them when None). A customer's entry is not a transition."""
    codes, _, _ = _state_codes(
        orders, as_of, period, lookback_periods, at_risk_periods, customer_col, at_col
    )
    counts = np.zeros((len(STATES), len(STATES)), dtype="int64")
    if codes.shape[1] > 1:
        origin, target = codes[:, :-1].ravel(), codes[:, 1:].ravel()
        present = origin != _ABSENT
        np.add.at(counts, (origin[present], target[present]), 1)
    index = pd.Index(STATES, name="from")
    return pd.DataFrame(counts, index=index, columns=pd.Index(STATES, name="to"))


def transition_matrix(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    period: Period = "M",
    lookback_periods: int | None = None,
    at_risk_periods: int = 2,
    customer_col: str = "customer_id",
    at_col: str = "at",
) -> pd.DataFrame:
    """The share of customers in each state (rows) found in each state (columns) one period
    later, estimated from `transition_counts`; every row sums to 1.

    A state nobody was observed to leave (no transition out of it in the window) keeps its
    customers: its row is 1 on the diagonal. Check `transition_counts` for the evidence behind
    each row.
    """
    counts = transition_counts(
        orders,
        as_of,
        period=period,
        lookback_periods=lookback_periods,
        at_risk_periods=at_risk_periods,
        customer_col=customer_col,
        at_col=at_col,
    )
    values = counts.to_numpy(dtype=float)
    totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, totals, out=np.eye(len(STATES)), where=totals > 0)
    return pd.DataFrame(shares, index=counts.index, columns=counts.columns)


def project(
    matrix: pd.DataFrame, start_counts: pd.Series | Mapping[str, float], periods: int
) -> pd.DataFrame:
    """Expected number of customers in each state for each of the next `periods` periods.

    Row 0 is `start_counts` (states missing from it count 0); row n is row n-1 times the
    matrix. The cohort is closed: customers acquired later are not in it, so every row has the
    same total.
    """
    _check_stochastic(matrix)
    start = pd.Series(start_counts, dtype=float)
    unknown = sorted(set(map(str, start.index)) - set(map(str, matrix.index)))
    if unknown:
        raise ValueError(f"start_counts has states the matrix lacks: {', '.join(unknown)}")
    if periods < 0:
        raise ValueError(f"periods must be >= 0, got {periods}")
    current = start.reindex(matrix.index, fill_value=0.0).to_numpy(dtype=float)
    step = matrix.to_numpy(dtype=float)
    rows = [current]
    for _ in range(periods):
        current = current @ step
        rows.append(current)
    return pd.DataFrame(
        np.vstack(rows),
        index=pd.RangeIndex(periods + 1, name="period"),
        columns=pd.Index(list(matrix.columns), name="state"),
    )


def _check_stochastic(matrix: pd.DataFrame) -> None:
    if list(matrix.index) != list(matrix.columns):
        raise ValueError(
            "the transition matrix needs the same states, in the same order, as rows and columns"
        )
    values = matrix.to_numpy(dtype=float)
    if (values < 0).any() or not np.allclose(values.sum(axis=1), 1.0, atol=1e-9):
        raise ValueError("every row of the transition matrix must be shares summing to 1")


def _state_codes(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    period: Period,
    lookback_periods: int | None,
    at_risk_periods: int,
    customer_col: str,
    at_col: str,
) -> tuple[NDArray[np.int64], pd.Index, list[pd.Timestamp]]:
    """State codes (customers x periods; -1 before entry) for the periods from the origin of the
    first transition counted to the last complete period."""
    require(orders, (customer_col, at_col), "orders")
    if at_risk_periods < 1:
        raise ValueError(f"at_risk_periods must be >= 1, got {at_risk_periods}")
    if lookback_periods is not None and lookback_periods < 0:
        raise ValueError(f"lookback_periods must be >= 0, got {lookback_periods}")
    as_of = utc(as_of)
    customers = orders[customer_col].reset_index(drop=True)
    at = pd.to_datetime(orders[at_col], utc=True).reset_index(drop=True)
    known = customers.notna() & at.notna()
    customers, at = customers[known], at[known]
    index, last, label = _period_index(at, as_of, period)
    keep = index <= last
    bought = pd.DataFrame({"customer": customers[keep], "period": index[keep]})
    first = bought.groupby("customer", sort=True)["period"].min()
    if first.empty:
        return np.zeros((0, 0), dtype=np.int64), pd.Index([], name=customer_col), []
    start = int(first.min()) if lookback_periods is None else last - lookback_periods
    start = max(start, int(first.min()))
    if start > last:
        return np.zeros((len(first), 0), dtype=np.int64), first.index.rename(customer_col), []
    k = at_risk_periods
    span = last - (start - k) + 1  # purchase columns from start - k to last
    row = pd.Index(first.index).get_indexer(bought["customer"])
    column = bought["period"].to_numpy() - (start - k)
    inside = column >= 0
    purchases = np.zeros((len(first), span), dtype=bool)
    purchases[row[inside], column[inside]] = True
    # a purchase in any of the k periods before t: a sliding window over the columns
    cumulative = np.concatenate(
        [np.zeros((len(first), 1), dtype=np.int64), purchases.cumsum(axis=1)], axis=1
    )
    shown = np.arange(k, span)  # columns of periods start .. last
    recent = (cumulative[:, shown] - cumulative[:, shown - k]) > 0
    codes = np.where(purchases[:, shown], _ACTIVE, np.where(recent, _AT_RISK, _CHURNED))
    periods = np.arange(start, last + 1)
    codes[first.to_numpy()[:, None] > periods[None, :]] = _ABSENT
    labels = [label(int(p)) for p in periods]
    return codes.astype(np.int64), first.index.rename(customer_col), labels


def _period_index(
    at: pd.Series, as_of: pd.Timestamp, period: Period
) -> tuple[pd.Series, int, Callable[[int], pd.Timestamp]]:
    """Each order's period as an integer, the last complete period, and period -> label."""
    if isinstance(period, str):
        if period.upper() not in ("M", "MS", "ME"):
            raise ValueError(
                f"period must be 'M' (calendar months) or a number of days, got {period!r}"
            )
        months = (at.dt.year * 12 + at.dt.month - 1).astype("int64")
        last = as_of.year * 12 + as_of.month - 2  # the month before as_of's month

        def month_start(index: int) -> pd.Timestamp:
            return pd.Timestamp(year=index // 12, month=index % 12 + 1, day=1, tz="UTC")

        return months, last, month_start
    days = float(period)
    if not days > 0:
        raise ValueError(f"a period of days must be positive, got {period}")
    length = pd.Timedelta(days=days)
    blocks = np.floor((at - as_of) / length).astype("int64")

    def block_start(index: int) -> pd.Timestamp:
        return as_of + index * length

    return blocks, -1, block_start
