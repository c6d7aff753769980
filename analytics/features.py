"""Customer features as of a date: what a model may know about each customer at that moment.

`customer_features` gives one numeric row per customer (RFM, tenure, recent orders and spend,
contacts and how they went, the customer's own properties); `category_history` gives, for each
customer and product category, whether they bought it in a recent window and how much they spent.

Only events strictly before `as_of` are read: an order, line or contact at `as_of` or later
never changes a feature. Customer properties (country, loyalty tier, ...) are taken as they are
in the customers table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from crm_graph.analytics.frames import require, utc
from crm_graph.analytics.rfm import SEGMENT_RULES, rfm
from crm_graph.graph.schema import INTERACTION_TYPES

__all__ = [
    "INTERACTION_TYPES",
    "WINDOWS",
    "category_history",
    "customer_features",
    "reusing_customer_features",
]

WINDOWS = (30, 90, 365)
"""Default look-back windows, in days, for order, spend and contact counts."""

# INTERACTION_TYPES (graph/schema.py): the contact types that always get their columns (other
# types seen before `as_of` are added).

PERSONAL_FIELDS = ("name", "email", "phone", "city")
"""Customer properties never used as features."""

_DAY = pd.Timedelta(days=1)

_REUSED: ContextVar[dict[tuple[Any, ...], tuple[pd.DataFrame, tuple[Any, ...]]] | None]
_REUSED = ContextVar("reused_customer_features", default=None)


@contextlib.contextmanager
def reusing_customer_features() -> Iterator[None]:
    """Within the block, `customer_features` of the same table objects with the same arguments
    is computed once (a copy is returned each time). For a caller that asks for the same cut-off
    from several models over tables it does not change meanwhile, such as `crm-graph train`."""
    token = _REUSED.set({})
    try:
        yield
    finally:
        _REUSED.reset(token)


def customer_features(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Timestamp | str,
    *,
    windows: Sequence[int] = WINDOWS,
    recent_days: int = 90,
    max_levels: int = 10,
    levels: Levels | None = None,
    ignore: Iterable[str] = PERSONAL_FIELDS,
    customer_col: str = "customer_id",
    signup_col: str = "signup_at",
    at_col: str = "at",
    total_col: str = "total",
    category_col: str = "category",
    type_col: str = "type",
    channel_col: str = "channel",
    sentiment_col: str = "sentiment",
    satisfaction_col: str = "satisfaction",
) -> pd.DataFrame:
    """One row of numeric features per customer of `customers` (in its order), as of `as_of`.

    Orders (`recency_days` ... `spend_<w>d`):

    - `recency_days`, `frequency`, `monetary` (mean order value), `r_score`, `f_score`,
      `m_score` from `analytics.rfm` on the orders before `as_of`; a customer without orders
      has recency and monetary NaN, frequency 0 and scores 0 (below the lowest score, 1);
      `rfm_segment_<name>`: 1 for the customer's RFM segment (all 0 without orders);
    - `spend_total`: the sum of their order totals;
    - `orders_<w>d`, `spend_<w>d` for each window w of `windows`: orders and their totals in the
      w days before `as_of`;
    - `distinct_categories`: how many product categories they have ever bought;
    - `tenure_days`: days since signup, or since the first order when the signup date is
      missing; NaN for a customer who had neither before `as_of` (not a customer yet).

    Contacts (`interactions` table):

    - `interactions_total`, `interactions_<w>d` per window, `interactions_<type>` per type (the
      seven contract types always, plus any other seen), `interactions_via_<channel>` per
      channel seen before `as_of`;
    - `sentiment_mean`, `satisfaction_mean` over all contacts, and `sentiment_mean_<type>`,
      `satisfaction_mean_<type>` per type, each NaN when nothing was rated, with the number of
      rated contacts beside it (`sentiment_count...`, `satisfaction_count...`) so that "never
      rated" and "neutral" stay apart; `sentiment_mean_<recent_days>d` over recent contacts;
    - `days_since_last_interaction` (NaN if none) and `ticket_share` (tickets over all
      contacts, 0 if none).

    Properties: every other column of `customers` except `customer_col`, `signup_col` and the
    `ignore` list (personal fields). Numbers and booleans are kept as they are; any other column
    is one-hot encoded as `<column>_<level>` for its `max_levels` most frequent values (ties by
    value), and `<column>_other` for the remaining ones (missing values: all zeros). So a
    column with thousands of values still yields at most `max_levels + 1` columns. `levels`
    (from `property_levels`, at a training) fixes the encoded values of the columns it names
    instead: models fitted on one customer table then find their columns in a later one, whose
    most frequent values may have changed.

    Inside `reusing_customer_features()`, a repeated call returns a copy of the first answer.
    """
    arguments: dict[str, Any] = dict(
        windows=tuple(windows), recent_days=recent_days, max_levels=max_levels,
        levels=None if levels is None else tuple(sorted(levels.items())), ignore=tuple(ignore),
        customer_col=customer_col, signup_col=signup_col, at_col=at_col,
        total_col=total_col, category_col=category_col, type_col=type_col,
        channel_col=channel_col, sentiment_col=sentiment_col, satisfaction_col=satisfaction_col,
    )  # fmt: skip
    reused = _REUSED.get()
    if reused is None:
        return _customer_features(customers, orders, lines, interactions, utc(as_of), **arguments)
    tables = (customers, orders, lines, interactions)
    key = (*map(id, tables), utc(as_of), *arguments.items())
    if key not in reused:  # the tables are kept with the answer: their ids stay theirs
        found = _customer_features(*tables, utc(as_of), **arguments)
        reused[key] = (found, tables)
    return reused[key][0].copy()


def _customer_features(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    windows: Sequence[int],
    recent_days: int,
    max_levels: int,
    levels: tuple[tuple[str, tuple[tuple[Any, ...], bool] | None], ...] | None,
    ignore: Iterable[str],
    customer_col: str,
    signup_col: str,
    at_col: str,
    total_col: str,
    category_col: str,
    type_col: str,
    channel_col: str,
    sentiment_col: str,
    satisfaction_col: str,
) -> pd.DataFrame:
    require(customers, (customer_col,), "customers")
    require(orders, (customer_col, at_col, total_col), "orders")
    require(lines, (customer_col, at_col, category_col), "lines")
    require(interactions, (customer_col, at_col, type_col), "interactions")
    index = pd.Index(customers[customer_col].to_numpy(), name=customer_col)
    if index.has_duplicates:
        raise ValueError("customers lists a customer more than once")
    past_orders = _before(orders, as_of, at_col)
    past_lines = _before(lines, as_of, at_col)
    past_contacts = _before(interactions, as_of, at_col)

    parts = [
        _order_features(past_orders, index, as_of, windows, customer_col, at_col, total_col),
        _tenure(customers, past_orders, index, as_of, customer_col, signup_col, at_col),
        _distinct_categories(past_lines, index, customer_col, category_col),
        _contact_features(past_contacts, index, as_of, windows, recent_days, customer_col,
                          at_col, type_col, channel_col, sentiment_col, satisfaction_col),
        _properties(customers, index, max_levels, {customer_col, signup_col, *ignore},
                    dict(levels or ())),
    ]  # fmt: skip
    return pd.concat(parts, axis=1)


def category_history(
    lines: pd.DataFrame,
    as_of: pd.Timestamp | str,
    window_days: int,
    *,
    customers: Iterable[str] | None = None,
    categories: Sequence[str] | None = None,
    customer_col: str = "customer_id",
    at_col: str = "at",
    category_col: str = "category",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """What each customer bought of each category in the `window_days` days before `as_of`.

    A long table indexed by (`customer_col`, `category_col`) covering every customer of
    `customers` (default: whoever bought anything before `as_of`) times every category of
    `categories` (default: every category bought before `as_of`, sorted), with `bought` (1 if
    they bought it in the window, else 0) and `spend` (the amount of those lines, 0 if none).
    Lines without a category are left out.
    """
    require(lines, (customer_col, at_col, category_col, amount_col), "lines")
    as_of = utc(as_of)
    past = _before(lines, as_of, at_col)
    if customers is None:
        customers = sorted(past[customer_col].dropna().unique().tolist())
    if categories is None:
        categories = sorted(past[category_col].dropna().unique().tolist())
    window = past[_at(past, at_col).ge(as_of - window_days * _DAY)]
    spend = window.groupby([customer_col, category_col])[amount_col].sum()
    grid = pd.MultiIndex.from_product([pd.Index(list(customers)), pd.Index(list(categories))],
                                      names=[customer_col, category_col])  # fmt: skip
    spend = spend.reindex(grid)
    return pd.DataFrame({"bought": spend.notna().astype("int64"),
                         "spend": spend.fillna(0.0).astype(float)}, index=grid)  # fmt: skip


# --- Orders --------------------------------------------------------------------------------


def _order_features(
    orders: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp, windows: Sequence[int],
    customer_col: str, at_col: str, total_col: str,
) -> pd.DataFrame:  # fmt: skip
    scored = rfm(orders, as_of, customer_col=customer_col, at_col=at_col, value_col=total_col)
    scored = scored.reindex(index)
    out = pd.DataFrame(index=index)
    out["recency_days"] = scored["recency_days"].astype(float)
    out["frequency"] = scored["frequency"].fillna(0).astype("int64")
    out["monetary"] = scored["monetary"].astype(float)
    for score in ("r_score", "f_score", "m_score"):
        out[score] = scored[score].fillna(0).astype("int64")
    for rule in SEGMENT_RULES:
        out[f"rfm_segment_{rule.name}"] = scored["rfm_segment"].eq(rule.name).astype("int64")
    # the sums grouped by the customers' positions in `index` (see _contact_features)
    positions = pd.RangeIndex(len(index))
    totals = pd.Series(orders[total_col].to_numpy(), name=total_col)
    code = index.get_indexer(orders[customer_col].to_numpy(dtype=object))
    ours = code >= 0
    out["spend_total"] = _on(totals[ours].groupby(code[ours]).sum(), positions, index, 0.0)
    at = _at(orders, at_col)
    for days in windows:
        kept = ours & at.ge(as_of - days * _DAY).to_numpy()
        recent = totals[kept].groupby(code[kept])
        out[f"orders_{days}d"] = _on(recent.size(), positions, index, 0).astype("int64")
        out[f"spend_{days}d"] = _on(recent.sum(), positions, index, 0.0)
    return out


def _on(values: pd.Series, positions: pd.RangeIndex, index: pd.Index, fill: float) -> pd.Series:
    """Values keyed by position in `index`, on `index` (`fill` where there are none)."""
    return pd.Series(values.reindex(positions, fill_value=fill).to_numpy(), index=index)


def _distinct_categories(
    lines: pd.DataFrame, index: pd.Index, customer_col: str, category_col: str
) -> pd.Series:
    """How many categories each customer of `index` bought (missing categories not counted)."""
    code = index.get_indexer(lines[customer_col].to_numpy(dtype=object))
    category, _ = pd.factorize(lines[category_col].to_numpy(dtype=object))
    known = (code >= 0) & (category >= 0)
    width = int(category.max(initial=0)) + 1
    pairs = np.unique(code[known].astype(np.int64) * width + category[known])
    counts = np.bincount(pairs // width, minlength=len(index))
    return pd.Series(counts.astype("int64"), index=index, name="distinct_categories")


def _tenure(
    customers: pd.DataFrame, orders: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp,
    customer_col: str, signup_col: str, at_col: str,
) -> pd.Series:  # fmt: skip
    # Every instant in nanoseconds and UTC: pandas 3 reads a column without any date as
    # datetime64[s], and `.to_numpy()` of a UTC column drops its zone, either of which made the
    # comparison with `as_of` raise ("Invalid comparison between dtype=datetime64[s] and
    # Timestamp") on a customer table without signup dates.
    first_order = orders.groupby(customer_col)[at_col].min().reindex(index)
    first_order = _instants(first_order)
    if signup_col in customers.columns:
        signup = pd.Series(_instants(customers[signup_col]).array, index=index)
        signup = signup.where(signup.lt(as_of))
        start = signup.fillna(first_order)
    else:
        start = first_order
    return ((as_of - start) / _DAY).astype(float).rename("tenure_days")


def _instants(values: pd.Series) -> pd.Series:
    """`values` as UTC instants in nanoseconds (missing: NaT), whatever unit they came in."""
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


# --- Contacts ------------------------------------------------------------------------------


def _contact_features(
    contacts: pd.DataFrame, index: pd.Index, as_of: pd.Timestamp, windows: Sequence[int],
    recent_days: int, customer_col: str, at_col: str, type_col: str, channel_col: str,
    sentiment_col: str, satisfaction_col: str,
) -> pd.DataFrame:  # fmt: skip
    channel = (contacts[channel_col] if channel_col in contacts.columns
               else pd.Series(None, index=contacts.index))  # fmt: skip
    # customers as their positions in `index`: grouping and aligning on small integers instead
    # of hashing every id again for each of the thirty-odd columns
    frame = pd.DataFrame({
        "customer": index.get_indexer(contacts[customer_col].to_numpy(dtype=object)),
        "at": _at(contacts, at_col).array,
        "type": contacts[type_col].astype("object").to_numpy(),
        "channel": channel.astype("object").to_numpy(),
        "sentiment": _numbers(contacts, sentiment_col),
        "satisfaction": _numbers(contacts, satisfaction_col),
    })  # fmt: skip
    frame = frame[frame["customer"].to_numpy() >= 0]
    customers, index = index, pd.RangeIndex(len(index))
    grouped = frame.groupby("customer")
    total = grouped.size().reindex(index, fill_value=0).astype("int64")
    columns: dict[str, pd.Series] = {"interactions_total": total}
    for days in windows:
        in_window = frame[frame["at"].ge(as_of - days * _DAY)]
        columns[f"interactions_{days}d"] = _count(in_window.groupby("customer").size(), index)
    types = list(INTERACTION_TYPES) + sorted(set(frame["type"].dropna()) - set(INTERACTION_TYPES))
    by_type = frame.groupby(["customer", "type"]).size().unstack(fill_value=0)
    by_type = by_type.reindex(index=index, columns=types, fill_value=0).astype("int64")
    for kind in types:
        columns[f"interactions_{kind}"] = by_type[kind]
    by_channel = frame.groupby(["customer", "channel"]).size().unstack(fill_value=0)
    for name in sorted(by_channel.columns):
        columns[f"interactions_via_{name}"] = _count(by_channel[name], index)
    for measure in ("sentiment", "satisfaction"):
        columns[f"{measure}_mean"] = grouped[measure].mean().reindex(index).astype(float)
        columns[f"{measure}_count"] = _count(grouped[measure].count(), index)
        by_kind = frame.groupby(["customer", "type"])[measure]
        means = by_kind.mean().unstack().reindex(index=index, columns=types)
        counts = by_kind.count().unstack().reindex(index=index, columns=types)
        for kind in types:
            columns[f"{measure}_mean_{kind}"] = means[kind].astype(float)
            columns[f"{measure}_count_{kind}"] = counts[kind].fillna(0).astype("int64")
    recent = frame[frame["at"].ge(as_of - recent_days * _DAY)].groupby("customer")["sentiment"]
    columns[f"sentiment_mean_{recent_days}d"] = recent.mean().reindex(index).astype(float)
    columns[f"sentiment_count_{recent_days}d"] = _count(recent.count(), index)
    last = grouped["at"].max().reindex(index)
    columns["days_since_last_interaction"] = ((as_of - last) / _DAY).astype(float)
    columns["ticket_share"] = (by_type["ticket"] / total.where(total > 0)).fillna(0.0)
    return pd.DataFrame(columns, index=index).set_axis(customers)


def _count(counts: pd.Series, index: pd.Index) -> pd.Series:
    """Counts per customer over `index`, 0 where the customer has none."""
    return counts.reindex(index, fill_value=0).astype("int64")


# --- Properties ----------------------------------------------------------------------------


Levels = Mapping[str, tuple[tuple[Any, ...], bool] | None]
"""Per text property: the values one-hot encoded, and whether `<column>_other` is too; None for
a property that was a number or a boolean (kept a number even if a later table holds it as
text: a boolean with a customer lacking it, say)."""


def property_levels(
    customers: pd.DataFrame,
    *,
    max_levels: int = 10,
    ignore: Iterable[str] = PERSONAL_FIELDS,
    customer_col: str = "customer_id",
    signup_col: str = "signup_at",
) -> dict[str, tuple[tuple[Any, ...], bool] | None]:
    """The encoding `customer_features` gives the properties of `customers` (see `Levels`), to
    be saved with models fitted on them and passed back as its `levels`."""
    skip = {customer_col, signup_col, *ignore}
    return {
        str(name): _levels(_text(values), max_levels) if _is_text(values) else None
        for name, values in customers.items()
        if name not in skip and not pd.api.types.is_datetime64_any_dtype(values)
    }


def _properties(
    customers: pd.DataFrame, index: pd.Index, max_levels: int, skip: set[str], fixed: Levels
) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for name in customers.columns:
        if name in skip:
            continue
        values = customers[name]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            columns[str(name)] = values.astype(float).to_numpy()
            continue
        if not _is_text(values):
            continue
        encoding = fixed[name] if name in fixed else _levels(_text(values), max_levels)
        if encoding is None:  # a number at training
            columns[str(name)] = _as_numbers(values)
            continue
        text = _text(values)
        levels, other = encoding
        for level in levels:
            columns[f"{name}_{level}"] = text.eq(level).astype("int64").to_numpy()
        if other:
            rest = text.notna() & ~text.isin(levels)
            columns[f"{name}_other"] = rest.astype("int64").to_numpy()
    return pd.DataFrame(columns, index=index)


def _is_text(values: pd.Series) -> bool:
    """A property one-hot encoded: neither a number, a boolean nor a date."""
    return not (
        pd.api.types.is_bool_dtype(values)
        or pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_datetime64_any_dtype(values)
    )


def _as_numbers(values: pd.Series) -> np.ndarray:
    """Booleans as 1.0 and 0.0, numbers as they are, anything else NaN."""
    as_number = values.map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    return pd.to_numeric(as_number, errors="coerce").astype(float).to_numpy()


def _text(values: pd.Series) -> pd.Series:
    return values.astype("object").where(values.notna())


def _levels(text: pd.Series, max_levels: int) -> tuple[tuple[Any, ...], bool]:
    """The `max_levels` most frequent values (ties by value), and whether there are others."""
    counts = text.value_counts()
    counts = counts.sort_index(key=lambda labels: labels.astype(str), kind="stable")
    levels = counts.sort_values(ascending=False, kind="stable").index[:max_levels]
    return tuple(levels.tolist()), len(counts) > max_levels


# --- Helpers -------------------------------------------------------------------------------


def _before(frame: pd.DataFrame, as_of: pd.Timestamp, at_col: str) -> pd.DataFrame:
    """Rows strictly before `as_of`."""
    return frame[_at(frame, at_col).lt(as_of)]


def _at(frame: pd.DataFrame, at_col: str) -> pd.Series:
    return pd.to_datetime(frame[at_col], utc=True)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
