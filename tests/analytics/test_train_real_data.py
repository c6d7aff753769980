"""`crm-graph train` on real public data of every shape, loaded through the loader into a real
store, the scores read back through GraphQL.

- mlc-churn: an account table with a churn flag, attributes only (no orders, no contacts);
- CDNOW: orders without product lines or signup dates, the graph holding the real future after
  `as_of` (the paper's back-test, through `load` + `train`);
- Online Retail (sample): order lines naming products without categories;
- Epinions: one product per order over a large catalogue, with a trust network (a seeded sample
  of 600 users: the full set takes minutes to load).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_graph.analytics.train import train
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.analytics.cdnow import CALIBRATION_END, HOLDOUT_DAYS, cdnow_orders
from tests.conftest import Api
from tests.datasets import (
    cdnow_to_contract,
    epinions_to_contract,
    mlc_churn_to_contract,
    online_retail_to_contract,
    read_online_retail,
)

CUSTOMER = """
query($id: ID!) {
  customer(id: $id) {
    id
    rfm { frequency score }
    clv { expectedPurchases probabilityAlive horizonDays }
    churnRisk { score drivers { feature contribution } modelVersion }
    segment { name }
    recommendations(first: 3) { product { id } score reasons }
    pagerank
  }
}
"""


async def test_an_account_table_with_a_churn_flag_learns_churn_from_its_attributes(
    store: GraphStore, admin: Api, datasets: Path, tmp_path: Path
) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    # given the telecom accounts (20 attributes and a yes/no churn flag, nothing else) loaded
    await load_folder(store, mlc_churn_to_contract(datasets, tmp_path / "mlc"), progress=False)
    # when churn is trained on the flag
    report = await train(store, churn_label="churn", model_dir=tmp_path / "models")
    # then it is learnt from the flag and the attributes, and the rest is skipped, saying why
    churn = report.metrics["churn"]
    assert "'churn' flag and 20 attributes" in churn["learnt_from"], churn
    assert churn["n_test"] == 1500 and churn["n_train"] == 3500
    assert "no orders" in report.skipped["rfm"] and "no orders" in report.skipped["clv"]
    assert "segments" in report.metrics
    # and it is at least as good as a plain gradient-boosting model on the same columns, on
    # the same held-out customers (the flagged customers by id, 30% stratified, seed 0)
    raw = pd.read_csv(datasets / "mlc-churn" / "mlc_churn.csv")
    raw.index = [f"A{i:04d}" for i in range(1, len(raw) + 1)]
    flag = raw.pop("churn").eq("yes").astype(int)
    for column in raw.columns:
        if not pd.api.types.is_numeric_dtype(raw[column]):
            raw[column] = raw[column].astype("category")
    train_ids, test_ids = train_test_split(
        raw.index.to_numpy(), test_size=0.3, stratify=flag, random_state=0
    )
    plain = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    plain.fit(raw.loc[train_ids], flag.loc[train_ids])
    reference = roc_auc_score(flag.loc[test_ids], plain.predict_proba(raw.loc[test_ids])[:, 1])
    assert churn["auc"] >= reference - 0.005, (churn["auc"], reference)
    # and each account's risk reads back through GraphQL like any other, with its drivers
    view = (await admin.data(CUSTOMER, id="A0001"))["customer"]
    assert 0 <= view["churnRisk"]["score"] <= 1
    assert view["churnRisk"]["modelVersion"] == report.version
    assert view["churnRisk"]["drivers"] and all(
        d["feature"] != "churn" for d in view["churnRisk"]["drivers"]
    )
    assert view["rfm"] is None and view["segment"]["name"]
    # and the accounts who churned carry a higher risk than those who stayed
    risks = await store.read("MATCH (c:Customer) RETURN c.churn AS flag, c.mlChurnRisk AS risk")
    by_flag = pd.DataFrame(risks).groupby("flag")["risk"].mean()
    assert by_flag["yes"] > 2 * by_flag["no"], by_flag


async def test_orders_without_lines_evaluated_on_the_real_future_give_the_cdnow_back_test(
    store: GraphStore, admin: Api, tmp_path: Path
) -> None:
    # given the CDNOW sample (2,357 customers, ids only; orders without products to mid-1998)
    orders = cdnow_orders("sample")
    await load_folder(store, cdnow_to_contract(orders, tmp_path / "cdnow"), progress=False)
    # when trained as of the end of 30 September 1997 over the paper's 39-week holdout
    report = await train(store, as_of=CALIBRATION_END, horizon_days=HOLDOUT_DAYS)
    # then every model is measured on what followed, and says so
    assert report.evaluation is not None and report.evaluation.future
    assert report.as_json()["evaluation"]["kind"] == "real future"
    # and CLV gives the figures of `python -m bench.cdnow` (and of the paper)
    clv = report.metrics["clv"]
    assert clv["actual_purchases"] == 1882 and clv["customers"] == 2357
    assert clv["predicted_purchases"] == pytest.approx(1653.4, abs=0.5)
    assert clv["params"]["r"] == pytest.approx(0.243, abs=0.001)
    assert clv["penalizer"] == 0 and "real future" in clv["evaluation"]
    # and RFM and the Markov outlook are trained from the orders alone; churn over 273 days
    # cannot be (its training labels would start on 1 January 1997, before anyone was active)
    assert {"rfm", "markov", "segments"} <= set(report.metrics)
    assert "active" in report.skipped["churn"] and "1997-01-01" in report.skipped["churn"]
    assert "product" in report.skipped["rules"] and "product" in report.skipped["recommendations"]
    assert "ties" in report.skipped["network"]
    # and nothing after as_of was a feature: RFM counts only purchases before it
    view = (await admin.data(CUSTOMER, id="0001"))["customer"]
    before = orders[(orders["customer_id"] == "0001") & (orders["at"] < CALIBRATION_END)]
    assert view["rfm"]["frequency"] == before["transaction_id"].nunique()
    assert view["clv"]["horizonDays"] == HOLDOUT_DAYS and view["clv"]["expectedPurchases"] >= 0
    # when trained over 90 days instead, churn is learnt from the orders and measured on who
    # bought again from October to December 1997
    quarter = await train(store, as_of=CALIBRATION_END, horizon_days=90)
    churn = quarter.metrics["churn"]
    assert 0.6 < churn["auc"] <= 1 and "real future" in churn["evaluation"], churn
    # and each customer active before as_of reads their risk back
    recent = orders["at"].between(CALIBRATION_END - pd.Timedelta(days=180), CALIBRATION_END,
                                  inclusive="left")  # fmt: skip
    view = (await admin.data(CUSTOMER, id=orders.loc[recent, "customer_id"].min()))["customer"]
    assert 0 <= view["churnRisk"]["score"] <= 1
    assert view["churnRisk"]["modelVersion"] == quarter.version


def test_train_as_of_a_day_means_at_its_end() -> None:
    from crm_graph.api.cli import build_parser

    # `crm-graph train --as-of 1997-09-30` knows the orders of 30 September: the CDNOW cut-off
    arguments = build_parser().parse_args(["train", "--as-of", "1997-09-30"])
    assert arguments.as_of == CALIBRATION_END


async def test_order_lines_without_categories_give_rules_and_recommendations(
    store: GraphStore, admin: Api, datasets: Path, tmp_path: Path
) -> None:
    # given the Online Retail sample: 3k products, no categories, no ties
    folder = online_retail_to_contract(read_online_retail(datasets), tmp_path / "retail")
    await load_folder(store, folder, progress=False)
    # when everything is trained
    report = await train(store, horizon_days=60)
    # then rules and recommendations are made from the products (not skipped for categories),
    # and only what needs categories or ties says so
    assert report.metrics["rules"]["count"] > 0, report.skipped
    recommendations = report.metrics["recommendations"]
    assert recommendations["hit_rate"] > recommendations["baseline_hit_rate"], recommendations
    assert "categor" in report.skipped["demand"] and "ties" in report.skipped["network"]
    # and a buyer's recommendations read back through GraphQL, with their reasons
    buyer = await store.read(
        "MATCH (c:Customer) WHERE c.mlRecommendations IS NOT NULL "
        "RETURN c.id AS id ORDER BY id LIMIT 1"
    )
    view = (await admin.data(CUSTOMER, id=buyer[0]["id"]))["customer"]
    assert view["recommendations"] and all(r["reasons"] for r in view["recommendations"])


async def test_one_product_per_order_over_a_large_catalogue_with_trust_ties(
    store: GraphStore, admin: Api, datasets: Path, tmp_path: Path
) -> None:
    # given Epinions users (a seeded sample) whose every rating is an order of one product
    folder = epinions_to_contract(datasets, tmp_path / "epinions", users=600)
    await load_folder(store, folder, progress=False)
    # when everything is trained
    report = await train(store, horizon_days=90)
    # then no rule is mined, saying why (one product per order), and recommendations are made
    assert "single product" in report.skipped["rules"], report.skipped
    assert report.metrics["recommendations"]["hit_rate"] >= 0
    assert report.metrics["network"]["communities"] > 1
    # and social demand beats both its baselines (the same model without the network's columns,
    # and the share of friends who bought the category; measured 0.909, 0.907 and 0.520)
    demand = report.metrics["demand"]
    assert demand["auc"] > demand["auc_without_network"], demand
    assert demand["auc"] > demand["auc_naive_social"], demand
    # and the network scores read back through GraphQL
    ranked = await store.read(
        "MATCH (c:Customer) WHERE c.mlPagerank IS NOT NULL RETURN c.id AS id ORDER BY id LIMIT 1"
    )
    view = (await admin.data(CUSTOMER, id=ranked[0]["id"]))["customer"]
    assert view["pagerank"] is not None
