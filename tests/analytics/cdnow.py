"""The CDNOW transactions (Fader, Hardie & Lee 2005) as an orders table, for tests.

The data come with the `lifetimes` wheel (a dev dependency) under `lifetimes/datasets/`. The
package itself is not imported (it is unmaintained and warns on import under pandas 3): its
folder is found with `importlib.util.find_spec`, which does not run the package's code.

- `CDNOW_master.txt`: every purchase of the 23,570 customers whose first purchase at CDNOW was
  in the first quarter of 1997, up to 30 June 1998 (a header line, then customer id, date
  YYYYMMDD, number of CDs, dollar value).
- `CDNOW_sample.txt`: the 1/10 sample of 2,357 of those customers used in the paper (master
  id, sample id, date, number of CDs, dollar value). Its customers are named by their sample
  id, the `ID` of the paper's published summary.
- `cdnow_customers_summary_with_transactions.csv`: that published summary (ID, x = repeat
  purchases, t_x = recency and T in weeks, zbar = mean repeat-purchase value), 39 weeks to
  30 September 1997.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest

CALIBRATION_END = pd.Timestamp("1997-10-01", tz="UTC")
"""End of the paper's 39-week calibration period (1 January to 30 September 1997 inclusive): the
instant at the end of 30 September, as the `as_of` of `analytics.clv` (which reads the orders
strictly before it, so the purchases dated 30 September are in, and 30 September is the last day
observed, to which the ages `T` run, as in the paper's published summary)."""

HOLDOUT_DAYS = 273
"""The 39-week holdout period that follows it, 1 October 1997 to 30 June 1998 inclusive."""

_FILES = {
    "master": "CDNOW_master.txt",
    "sample": "CDNOW_sample.txt",
    "published_summary": "cdnow_customers_summary_with_transactions.csv",
}

Which = Literal["master", "sample", "published_summary"]


def cdnow_path(which: Which) -> Path | None:
    """Where the file is, or None when the `lifetimes` wheel is not installed."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "datasets" / _FILES[which]
        if path.is_file():
            return path
    return None


def cdnow_orders(which: Literal["master", "sample"] = "sample") -> pd.DataFrame:
    """The purchases as an orders table (`analytics.frames.ORDERS`), or skip the calling test
    with the reason when the data are not installed."""
    path = _path_or_skip(which)
    if which == "master":
        names = ["customer_id", "date", "cds", "total"]
        skip = 1
    else:
        names = ["customer_id", "sample_id", "date", "cds", "total"]
        skip = 0
    with path.open(encoding="ascii") as handle:
        raw = pd.read_csv(
            handle,
            sep=r"\s+",
            header=None,
            names=names,
            skiprows=skip,
            dtype={"customer_id": "str", "sample_id": "str", "date": "str"},
        )
    return pd.DataFrame(
        {
            "customer_id": raw["customer_id" if which == "master" else "sample_id"],
            "transaction_id": [f"T{i}" for i in range(len(raw))],
            "at": pd.to_datetime(raw["date"], format="%Y%m%d", utc=True),
            "total": raw["total"].astype(float),
        }
    )


def cdnow_published_summary() -> pd.DataFrame:
    """The paper's calibration summary in weeks, indexed by sample id ("0001"...), with the
    column names of `analytics.clv.summary`; or skip the calling test."""
    path = _path_or_skip("published_summary")
    with path.open(encoding="ascii") as handle:
        raw = pd.read_csv(handle, dtype={"ID": "int64"})
    return pd.DataFrame(
        {
            "frequency": raw["x"].astype("int64").to_numpy(),
            "recency": raw["t_x"].astype(float).to_numpy(),
            "T": raw["T"].astype(float).to_numpy(),
            "monetary_value": raw["zbar"].astype(float).to_numpy(),
        },
        index=pd.Index([f"{i:04d}" for i in raw["ID"]], name="customer_id"),
    )


def _path_or_skip(which: Which) -> Path:
    path = cdnow_path(which)
    if path is None:
        pytest.skip(
            f"CDNOW data ({_FILES[which]}) not found: install the dev dependency 'lifetimes', "
            "whose wheel ships it under lifetimes/datasets/"
        )
    return path
