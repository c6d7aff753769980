"""Load generated data, train, and read the scores back through GraphQL."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from crm_graph.analytics.score import score_customers
from crm_graph.analytics.train import _Worker, train
from crm_graph.graph import events, score_properties
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate
from tests.conftest import Api
from tests.helpers import write_csv

CUSTOMER = """
query($id: ID!) {
  customer(id: $id) {
    id
    rfm { recencyDays frequency monetary score segment }
    clv { expectedPurchases expectedValue probabilityAlive horizonDays }
    churnRisk { score drivers { feature contribution } modelVersion asOf }
    segment { id name }
    demand { category probability }
    recommendations(first: 3) { product { id category } score reasons }
    productsBought(first: 100) { nodes { product { id } } }
    pagerank community
  }
}
"""
ROOT = """
{
  influencers(first: 3) { id pagerank }
  communities(first: 3) { id size members(first: 2) { id community } }
  segments { id name size profile }
  modelCards { name version metrics }
}
"""


async def test_training_scores_customers_readable_through_graphql(
    store: GraphStore, admin: Api, tmp_path: Path
) -> None:
    # given a generated business in the store
    generate(tmp_path / "biz", 1500, seed=21)
    await load_folder(store, tmp_path / "biz", progress=False)
    loaded = await events.last_sequence(store)
    # when everything is trained
    report = await train(store, horizon_days=90, model_dir=tmp_path / "models")
    # then the training wrote one event, with its counts, not one per customer
    (written,) = await events.events_after(store, loaded)
    assert written.type == "scores.written" and written.customer_ids == ()
    assert written.data == {"customers": report.customers_scored, "version": report.version,
                            "models": sorted(report.metrics)}  # fmt: skip
    # then the report has every metric, measured on held-out data
    metrics = report.metrics
    assert 0.5 < metrics["churn"]["auc"] <= 1
    assert metrics["demand"]["auc"] > metrics["demand"]["auc_naive_social"]
    assert metrics["clv"]["predicted_purchases"] > 0 and metrics["clv"]["actual_purchases"] > 0
    assert 2 <= metrics["segments"]["k"] <= 8
    assert -1 <= metrics["segments"]["silhouette"] <= 1
    assert metrics["rules"]["count"] >= 0
    for name in ("rules", "recommendations"):  # plain figures in the report, no tables
        assert all(isinstance(v, int | float | str | None) for v in metrics[name].values())
    assert report.skipped == {}
    # and a scored customer's analytics read back through the API
    active = await store.read(
        "MATCH (c:Customer) WHERE c.mlChurnRisk IS NOT NULL RETURN c.id AS id ORDER BY id LIMIT 1"
    )
    view = (await admin.data(CUSTOMER, id=active[0]["id"]))["customer"]
    assert view["rfm"]["score"] is not None and len(view["rfm"]["score"]) == 3
    assert 0 <= view["churnRisk"]["score"] <= 1
    assert view["churnRisk"]["modelVersion"] == report.version
    assert view["churnRisk"]["drivers"]
    assert view["clv"]["horizonDays"] == 90 and view["clv"]["expectedPurchases"] >= 0
    assert view["segment"]["name"]
    assert all(0 <= d["probability"] <= 1 for d in view["demand"])
    owned = {p["product"]["id"] for p in view["productsBought"]["nodes"]}
    assert view["recommendations"] and not owned & {
        r["product"]["id"] for r in view["recommendations"]
    }
    assert view["pagerank"] is not None and view["community"] is not None
    root = await admin.data(ROOT)
    ranks = [c["pagerank"] for c in root["influencers"]]
    assert ranks == sorted(ranks, reverse=True)
    assert all(m["community"] == c["id"] for c in root["communities"] for m in c["members"])
    customers = await store.read("MATCH (c:Customer) RETURN count(c) AS n")
    assert sum(s["size"] for s in root["segments"]) == customers[0]["n"]
    assert {card["name"] for card in root["modelCards"]} >= {
        "churn",
        "clv",
        "demand",
        "segments",
        "rules",
        "rfm",
    }

    # and a customer added after training is scored with the saved models, without retraining
    later = tmp_path / "later"
    write_csv(
        later / "customers.csv",
        [{"customer_id": "LATE1", "country": "GB", "signup_date": "2024-11-01"}],
    )
    write_csv(
        later / "transactions.csv",
        [
            {
                "transaction_id": "LT1",
                "customer_id": "LATE1",
                "timestamp": "2024-12-01T10:00:00Z",
                "product_id": view["productsBought"]["nodes"][0]["product"]["id"],
                "amount": "25",
            },
        ],
    )
    await load_folder(store, later, progress=False)
    scored = await score_customers(store, ["LATE1", "nobody"], report.model_file)
    assert list(scored.index) == ["LATE1"]
    late = (await admin.data(CUSTOMER, id="LATE1"))["customer"]
    assert late["churnRisk"]["modelVersion"] == report.version
    assert late["rfm"]["segment"] and late["segment"]["name"]
    assert await store.read("MATCH (m:ModelCard) RETURN count(m) AS n") == [
        {"n": len(report.metrics)}
    ]


async def test_a_worker_process_recommends_what_one_process_does(
    store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a generated business in the store
    generate(tmp_path / "biz", 600, seed=5)
    await load_folder(store, tmp_path / "biz", progress=False)
    recommended = "MATCH (c:Customer) RETURN c.id AS id, c.mlRecommendations AS r ORDER BY id"
    # when trained in one process (recommending 7 customers at a time), then with a worker
    # process for rules and recommendations (all customers at once: the worker's slice is the
    # module's 10,000)
    monkeypatch.setattr("crm_graph.analytics.train.RECOMMEND_SLICE", 7)
    alone = await train(store, horizon_days=90, processes=1)
    written_alone = await store.read(recommended)
    shared = await train(store, horizon_days=90, processes=2)
    written_shared = await store.read(recommended)
    # then the rules, recommendations and their back-tests are the same
    assert shared.metrics["rules"] == alone.metrics["rules"]
    assert shared.metrics["recommendations"] == alone.metrics["recommendations"]
    assert written_shared == written_alone
    assert sum(1 for row in written_alone if row["r"]) > 100
    # and the time spent waiting for the worker is reported beside its stages
    assert "waiting for the worker" in shared.seconds
    assert "waiting for the worker" not in alone.seconds
    assert {"rules", "recommendations"} <= set(shared.seconds) & set(alone.seconds)


def _unpicklable() -> object:
    return lambda: None  # a lambda does not pickle


def _refuse(reason: str) -> None:
    raise ValueError(reason)


def test_a_worker_s_error_is_raised_and_a_dead_worker_is_an_error_not_a_wait() -> None:
    failing = _Worker(_refuse, ("no rules today",))
    with pytest.raises(ValueError, match="no rules today"):
        failing.result()
    failing.stop()
    dying = _Worker(os._exit, (3,))
    with pytest.raises(RuntimeError, match=r"ended without an answer \(exit code 3\)"):
        dying.result()
    dying.stop()
    assert _Worker(max, (2, 7)).result() == 7
    unsendable = _Worker(_unpicklable, ())
    with pytest.raises(RuntimeError, match="answer could not be sent"):
        unsendable.result()
    unsendable.stop()


@pytest.mark.parametrize("bad", ["no-orders"])
async def test_training_an_empty_graph_says_why(store: GraphStore, bad: str) -> None:
    with pytest.raises(ValueError, match="no orders or contacts"):
        await train(store)


async def test_churn_learned_from_a_customer_property(store: GraphStore, tmp_path: Path) -> None:

    # given a business whose customers carry a recorded churn flag (from the generator's truth)
    generate(tmp_path / "biz", 1500, seed=23)
    people = pd.read_csv(tmp_path / "biz" / "customers.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(tmp_path / "biz" / "ground_truth.csv", dtype=str, keep_default_na=False)
    churned = dict(zip(truth["customer_id"], truth["churned_at"] != "", strict=True))
    people["cancelled"] = people["customer_id"].map(lambda c: "true" if churned[c] else "false")
    people.to_csv(tmp_path / "biz" / "customers.csv", index=False)
    await load_folder(store, tmp_path / "biz", progress=False)
    # when churn is trained on that property
    report = await train(store, churn_label="cancelled", model_dir=tmp_path / "models")
    # then it is evaluated on held-out customers, and the flag itself is not a feature
    churn = report.metrics["churn"]
    assert "cancelled" in churn["label"] and churn["n_test"] > 0
    assert churn["auc"] > 0.6
    drivers = await store.read(
        "MATCH (c:Customer) WHERE c.mlChurnDrivers IS NOT NULL RETURN c.mlChurnDrivers AS d"
    )
    assert drivers and all("cancelled" not in row["d"] for row in drivers)
    missing = await train(store, churn_label="no_such_property")
    assert "churn" in missing.skipped and "no_such_property" in missing.skipped["churn"]


async def test_a_young_business_trains_what_it_can_and_says_why_it_skips_the_rest(
    store: GraphStore, tmp_path: Path
) -> None:
    from crm_graph.analytics.extract import read_tables

    # given a business trained 150 days after its first order, with a 90-day horizon: the
    # back-tests' cut-offs (90 and 180 days back) fall before most of it, or before all of it
    generate(tmp_path / "biz", 400, seed=31)
    await load_folder(store, tmp_path / "biz", progress=False)
    first = (await read_tables(store)).orders["at"].min().normalize()
    as_of = first + pd.Timedelta(days=150)
    full = await train(store, horizon_days=90)  # an earlier training, on all of it
    assert {"churn", "demand"} <= set(full.metrics)
    # when trained 200 days after the last order with a 365-day horizon: the back-tests have
    # customers active, but nobody is active at as_of
    last = (await read_tables(store)).orders["at"].max().normalize()
    late = await train(store, as_of=last + pd.Timedelta(days=200), horizon_days=365)
    # then churn is skipped, saying there is nobody to score
    assert "nobody to score" in late.skipped["churn"], late.skipped
    # (a young business: its graph ends at as_of; one holding what came after as_of is
    # evaluated on it instead, see test_train_real_data.py)
    young = {"at": int(as_of.timestamp() * 1000)}
    await store.write("MATCH (t:Transaction) WHERE t.at >= $at DETACH DELETE t", young)
    await store.write("MATCH (i:Interaction) WHERE i.at >= $at DETACH DELETE i", young)
    # when everything is trained
    report = await train(store, as_of=as_of, horizon_days=90)
    assert report.evaluation is not None and not report.evaluation.future
    # then training finishes: what needs data before the first order is skipped, saying why
    skipped = report.skipped
    assert "churn" in skipped and "active" in skipped["churn"], skipped
    assert "demand" in skipped and str((as_of - pd.Timedelta(days=180)).date()) in skipped["demand"]
    # and what the data support is trained and written
    assert "rfm" in report.metrics and "segments" in report.metrics
    assert not {"churn", "demand"} & set(report.metrics)
    counts = await store.read(
        "MATCH (c:Customer) RETURN count(c) AS n, "
        "sum(CASE WHEN c.mlModelVersion = $v THEN 1 ELSE 0 END) AS scored",
        {"v": report.version},
    )
    assert counts[0]["scored"] == counts[0]["n"] == report.customers_scored > 0
    # and no score of the earlier training is left to pass for this one's
    stale = await store.read(
        "MATCH (c:Customer) WHERE c.mlChurnRisk IS NOT NULL OR c.mlDemand IS NOT NULL "
        "RETURN count(c) AS n"
    )
    assert stale == [{"n": 0}]
    # when all but two customers are gone, the segmentation is skipped too
    await store.write(
        "MATCH (c:Customer) WHERE NOT c.id IN $keep DETACH DELETE c",
        {"keep": sorted((await read_tables(store)).customers["customer_id"])[:2]},
    )
    few = await train(store, horizon_days=90)
    assert "segments" in few.skipped, few.skipped
    # and no earlier segment is left to pass for this training's
    left = await store.read("MATCH (g:Segment) RETURN count(g) AS n")
    assert left == [{"n": 0}]


def test_spend_so_uneven_that_its_mean_is_infinite_skips_the_value_not_the_training() -> None:
    import numpy as np

    from crm_graph.analytics import clv
    from crm_graph.analytics.train import TrainReport, _spend_model

    # given repeat buyers whose own mean order values are log-normal with a wide spread
    as_of = pd.Timestamp("2024-06-01", tz="UTC")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(200):
        mean = np.exp(rng.normal(3, 2.0))
        for _ in range(rng.integers(2, 6)):
            day = as_of - pd.Timedelta(days=int(rng.integers(1, 700)))
            rows.append((f"c{i}", day, mean * rng.gamma(5, 0.2)))
    summary = clv.summary(pd.DataFrame(rows, columns=["customer_id", "at", "total"]), as_of)
    report = TrainReport("v", as_of, 90)
    # when the spend model is fitted for training
    gamma = _spend_model(summary, report)
    # then Gamma-Gamma's q is at most 1 (no finite expected value): the value is skipped, saying so
    assert gamma is None
    assert "q = 0." in report.skipped["clv_value"]
    # and ten times narrower spreads give a spend model
    tame = summary.assign(monetary_value=np.exp(np.log(summary["monetary_value"]) / 10))
    assert _spend_model(tame, TrainReport("v", as_of, 90)) is not None


async def test_scoring_gives_churn_risk_to_the_customers_training_would_and_removes_the_rest(
    store: GraphStore, tmp_path: Path
) -> None:
    from crm_graph.analytics.churn import active_customers
    from crm_graph.analytics.extract import read_tables

    # given a trained business, a customer added since with no order, a lapsed customer
    # carrying a risk from some older run, and 20 new customers from a new country (which
    # pushes one of the ten most frequent countries of the training out of the top ten)
    generate(tmp_path / "biz", 400, seed=33)
    await load_folder(store, tmp_path / "biz", progress=False)
    report = await train(store, horizon_days=90, model_dir=tmp_path / "models")
    tables = await read_tables(store)
    active = set(active_customers(tables.orders, tables.customers, report.as_of))
    lapsed = next(c for c in tables.orders["customer_id"] if c not in active)
    buyer = sorted(active)[0]
    arrivals = [{"customer_id": "NEW1", "country": "GB", "signup_date": "2024-11-01"}] + [
        {"customer_id": f"Z{i:02d}", "country": "ZZ", "signup_date": "2024-11-01"}
        for i in range(20)
    ]
    write_csv(tmp_path / "new" / "customers.csv", arrivals)
    await load_folder(store, tmp_path / "new", progress=False)
    await store.write(
        "MATCH (c:Customer {id: $id}) SET c.mlChurnRisk = 0.5, c.mlChurnDrivers = '[]'",
        {"id": lapsed},
    )
    # when the newcomer alone is scored: nobody to give a churn risk, and that is no error
    alone = await score_customers(store, ["NEW1"], report.model_file)
    assert list(alone.index) == ["NEW1"] and score_properties.CHURN_RISK not in alone.columns
    # when they are scored with the saved models
    scored = await score_customers(store, ["NEW1", lapsed, buyer, "Z00"], report.model_file)
    # then only the active buyer has a churn risk, as training would have it; the others have
    # none, in the answer and in the graph
    assert scored[score_properties.CHURN_RISK].notna().to_dict() == {
        "NEW1": False, lapsed: False, buyer: True, "Z00": False
    }  # fmt: skip
    rows = await store.read(
        "MATCH (c:Customer) WHERE c.id IN $ids RETURN c.id AS id, c.mlChurnRisk AS risk, "
        "c.mlChurnDrivers AS drivers, c.mlClvHorizonDays AS horizon, c.mlModelVersion AS v",
        {"ids": ["NEW1", lapsed, buyer]},
    )
    found = {row["id"]: row for row in rows}
    assert found[buyer]["risk"] is not None and found[buyer]["drivers"]
    for customer in ("NEW1", lapsed):
        assert found[customer]["risk"] is None and found[customer]["drivers"] is None
    # and the CLV horizon is given only with a CLV: the new customer has no purchase to go on
    assert found["NEW1"]["horizon"] is None and found[buyer]["horizon"] == 90
    assert {row["v"] for row in rows} == {report.version}
    # and each is given a segment, the newcomer from the new country too, encoded as in training
    segments = await store.read(
        "MATCH (c:Customer)-[:IN_SEGMENT]->(g:Segment) WHERE c.id IN $ids RETURN c.id AS id",
        {"ids": ["NEW1", lapsed, buyer, "Z00"]},
    )
    assert sorted(row["id"] for row in segments) == sorted(["NEW1", lapsed, buyer, "Z00"])


def test_the_recommenders_back_test_knows_only_segments_from_before_its_start(
    tmp_path: Path,
) -> None:
    from crm_graph.analytics import features
    from crm_graph.analytics.train import rules_and_recommendations
    from tests.analytics.synthetic_frames import generated_frames

    # given a generated business, and its customers' features one horizon before as_of
    f = generated_frames(tmp_path / "biz", 600, seed=35)
    as_of = f.orders["at"].max().normalize() + pd.Timedelta(days=1)
    start = as_of - pd.Timedelta(days=90)
    at_start = features.customer_features(f.customers, f.orders, f.lines, f.interactions, start)
    ids = pd.Index(f.customers["customer_id"])
    # when the rules and recommendations are made with the segments as of as_of, and again
    # with every customer put in one segment as of as_of
    arguments = (f.lines, f.ties, ids, as_of, 90)
    right = rules_and_recommendations(*arguments, pd.Series("a", index=ids), at_start, 0)
    other = rules_and_recommendations(*arguments, pd.Series(ids, index=ids), at_start, 0)
    # then the back-test's figures are the same: it never sees the segments as of as_of
    assert right.recommendations == other.recommendations
    assert right.recommendations["hit_rate"] > 0
    # and the recommendations made as of as_of do use them
    assert not right.encoded.equals(other.encoded)
