"""The tables every analytics function works on: pandas DataFrames read from the graph as of a
date (see `analytics.extract`), with these columns. Functions take column names as given here,
an explicit `as_of`, and never look at a hidden "now".

All instants are timezone-aware UTC pandas Timestamps (`datetime64[ns, UTC]`).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator

import pandas as pd

ORDERS = ("customer_id", "transaction_id", "at", "total")
"""One row per order (a Transaction): who placed it, when, its total."""

LINES = ("customer_id", "transaction_id", "at", "product_id", "category", "quantity", "amount")
"""One row per order line with a product; `category` may be missing (NaN)."""

INTERACTIONS = (
    "customer_id",
    "interaction_id",
    "at",
    "type",
    "channel",
    "sentiment",
    "satisfaction",
)
"""One row per contact; `channel`, `sentiment`, `satisfaction` may be missing."""

TIES = ("source", "target", "type", "weight")
"""One row per social tie (directed as stored; most network features ignore direction)."""

CUSTOMERS = ("customer_id", "signup_at", "country")
"""One row per customer; any further columns are the customer's extra properties (numbers or
text) and may be used as features."""


class FrameError(ValueError):
    """A table lacks a column a function needs; the message names the table and columns."""


class NotEnoughData(ValueError):
    """The data cannot support a model or its back-test (too few orders before a cut-off, one
    class only among the labels, ...); the message says what was missing, and where. `train`
    skips the model with that reason."""


def require(frame: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    """Fail up front, naming every missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(
            f"{table} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns))}"
        )


def utc(moment: pd.Timestamp | str) -> pd.Timestamp:
    """A timezone-aware UTC instant; a naive one is read as UTC."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def empty(columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, and one full collection after it.

    Reading and training on a large graph allocate tens of millions of small objects (the
    store client's list for every value read, reasons and encoded texts per customer) and free
    almost none in cycles, yet each allocation burst set off collections that walked everything
    held so far: at 100k customers the read took 129 s with the collector on and 45 s with it
    off (both under the profiler), and training 187 s against 170 s."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()
