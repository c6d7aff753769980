"""Converters from the shared real datasets to the data contract (test helpers, not product)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

RETAIL_XLSX = Path("online-retail-sample") / "online_retail_sample.xlsx"


def read_online_retail(datasets: Path) -> pd.DataFrame:
    frame = pd.read_excel(datasets / RETAIL_XLSX, dtype={"InvoiceNo": str, "StockCode": str})
    frame["customer_id"] = frame["CustomerID"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return frame


def online_retail_to_contract(frame: pd.DataFrame, out: Path) -> Path:
    """UCI Online Retail line items → customers.csv, products.csv, transactions.csv."""
    out.mkdir(parents=True, exist_ok=True)
    known = frame[frame["customer_id"] != ""]
    customers = (
        known.groupby("customer_id", sort=True)["Country"]
        .first()
        .reset_index()
        .rename(columns={"Country": "country"})
    )
    customers["source_system"] = "online-retail"
    customers.to_csv(out / "customers.csv", index=False)
    products = (
        frame.groupby("StockCode", sort=True)["Description"]
        .first()
        .reset_index()
        .rename(columns={"StockCode": "product_id", "Description": "name"})
    )
    products.to_csv(out / "products.csv", index=False)
    lines = pd.DataFrame(
        {
            "transaction_id": frame["InvoiceNo"],
            "customer_id": frame["customer_id"],
            "timestamp": frame["InvoiceDate"].map(lambda t: t.isoformat()),
            "product_id": frame["StockCode"],
            "quantity": frame["Quantity"],
            "unit_price": frame["UnitPrice"],
        }
    )
    lines.to_csv(out / "transactions.csv", index=False)
    return out
