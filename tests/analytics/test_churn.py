"""Churn: labels from orders around a date, the calibrated model and its drivers, the temporal
back-test on a synthetic business where churn is real, and no leakage from after as_of."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from crm_graph.analytics.churn import (
    ChurnModel,
    churn_dataset,
    churn_features,
    churn_labels,
    churn_risk,
    evaluate,
    evaluate_and_score,
)
from tests.analytics.synthetic_frames import SyntheticFrames, generated_frames

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
HORIZON = 90


def _at(days: float) -> pd.Timestamp:
    return AS_OF + pd.Timedelta(days=days)


def test_labels_mark_active_customers_who_stop_buying() -> None:
    customers = pd.DataFrame({"customer_id": ["stays", "goes", "asleep", "new", "edge"]})
    orders = pd.DataFrame({
        "customer_id": ["stays", "stays", "goes", "asleep", "new", "edge", "edge", "stranger"],
        "at": [_at(-10), _at(5), _at(-100), _at(-400), _at(1), _at(-1), _at(HORIZON), _at(-1)],
    })  # fmt: skip
    labels = churn_labels(orders, customers, AS_OF, HORIZON)
    # asleep: not active before as_of; new: first order after it; stranger: not a customer;
    # edge: its next order falls exactly at as_of + horizon, outside [as_of, as_of + horizon)
    assert labels.to_dict() == {"edge": 1, "goes": 1, "stays": 0}
    assert labels.name == "churned"
    at_cut = churn_labels(
        pd.DataFrame({"customer_id": ["stays", "stays"], "at": [_at(-3), AS_OF]}),
        customers,
        AS_OF,
        HORIZON,
    )
    assert at_cut.to_dict() == {"stays": 0}  # an order at as_of is in the horizon
    longer = churn_labels(orders, customers, AS_OF, HORIZON, active_window_days=500)
    assert longer["asleep"] == 1


def test_labels_from_a_customer_property() -> None:
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"],
                              "cancelled": [True, False, None]})  # fmt: skip
    labels = churn_labels(pd.DataFrame(), customers, AS_OF, HORIZON, label_column="cancelled")
    assert labels.to_dict() == {"a": 1, "b": 0}


def test_training_set_from_a_customer_property() -> None:
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "cancelled": [1, 0, None]})
    orders = pd.DataFrame({"customer_id": ["a", "b"], "transaction_id": ["t1", "t2"],
                           "at": [_at(-5), _at(-50)], "total": [10.0, 20.0]})  # fmt: skip
    lines = orders.assign(product_id="p", category="Books", quantity=1, amount=orders["total"])
    contacts = pd.DataFrame(columns=["customer_id", "interaction_id", "at", "type", "channel",
                                     "sentiment", "satisfaction"])  # fmt: skip
    X, y = churn_dataset(customers, orders, lines, contacts, AS_OF, HORIZON,
                         label_column="cancelled")  # fmt: skip
    assert y.to_dict() == {"a": 1, "b": 0}
    assert list(X.index) == ["a", "b"]
    assert X.loc["a", "recency_days"] == pytest.approx(5.0)


def _toy(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Tickets drive churn, tenure protects, noise does nothing."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"tickets": rng.poisson(1.0, n).astype(float),
                      "tenure_days": rng.uniform(0, 2000, n),
                      "noise": rng.normal(size=n)},
                     index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))  # fmt: skip
    logit = -1.0 + 1.2 * X["tickets"] - 0.001 * X["tenure_days"]
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), index=X.index)
    return X, y


def test_unfitted_model_refuses_to_predict() -> None:
    X, _ = _toy(50, 0)
    model = ChurnModel()
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    with pytest.raises(NotFittedError):
        model.drivers(X)


@pytest.mark.parametrize("method", ["logistic", "boosting"])
def test_model_learns_churn_and_names_its_drivers(method: str) -> None:
    X, y = _toy(3_000, 1)
    model = ChurnModel(method).fit(X, y)
    assert list(model.feature_names_in_) == ["tickets", "tenure_days", "noise"]
    assert model.n_features_in_ == 3 and list(model.classes_) == [0, 1]
    X_new, y_new = _toy(1_000, 2)
    risk = model.predict_proba(X_new)[:, 1]
    assert risk.shape == (1_000,) and ((risk >= 0) & (risk <= 1)).all()
    assert roc_auc_score(y_new, risk) > 0.75
    # calibrated: the mean predicted risk is close to the observed rate
    assert abs(risk.mean() - y_new.mean()) < 0.05
    drivers = model.drivers(X_new.head(200), top=2)
    assert list(drivers.columns) == ["driver_1", "push_1", "driver_2", "push_2"]
    many_tickets = X_new.head(200)["tickets"] >= 3
    assert (drivers.loc[many_tickets, "driver_1"] == "tickets").all()
    assert (drivers["push_1"].dropna() > 0).all()
    # columns are matched by name: order and extra columns do not matter
    shuffled = X_new[["noise", "tickets", "tenure_days"]].assign(extra=1.0)
    np.testing.assert_allclose(model.predict_proba(shuffled)[:, 1], risk)


def test_model_refuses_one_class() -> None:
    X, _ = _toy(100, 3)
    with pytest.raises(ValueError, match="both classes"):
        ChurnModel().fit(X, pd.Series(0, index=X.index))


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFrames:
    return generated_frames(tmp_path_factory.mktemp("business"), 4_000, seed=5)


SCORE_AT = pd.Timestamp("2025-01-01", tz="UTC")


def test_back_test_auc_is_well_above_chance(business: SyntheticFrames) -> None:
    b = business
    result = evaluate(b.customers, b.orders, b.lines, b.interactions, SCORE_AT, HORIZON,
                      ties=b.ties)  # fmt: skip
    assert result.auc > 0.7
    assert result.brier < result.base_rate * (1 - result.base_rate)  # beats the base rate
    assert result.test_as_of == SCORE_AT - pd.Timedelta(days=HORIZON)
    assert result.train_as_of == SCORE_AT - pd.Timedelta(days=2 * HORIZON)
    table = result.calibration
    assert table["customers"].sum() == result.n_test
    weighted = (table["mean_predicted"] - table["observed_rate"]).abs() * table["customers"]
    assert weighted.sum() / table["customers"].sum() < 0.1


def test_derived_labels_follow_the_true_churn(business: SyntheticFrames) -> None:
    cut = SCORE_AT - pd.Timedelta(days=2 * HORIZON)
    labels = churn_labels(business.orders, business.customers, cut, HORIZON)
    churned_at = business.truth["churned_at"].reindex(labels.index)
    gone = churned_at.lt(cut)
    assert gone.sum() > 20
    assert (labels[gone] == 1).all()  # a churned customer buys nothing
    leaving = churned_at.lt(cut + pd.Timedelta(days=HORIZON))
    assert labels[leaving].mean() > labels[churned_at.isna()].mean() + 0.4


def test_scores_active_customers_now_with_drivers(business: SyntheticFrames) -> None:
    b = business
    scores = churn_risk(b.customers, b.orders, b.lines, b.interactions, SCORE_AT, HORIZON)
    active = churn_labels(b.orders, b.customers, SCORE_AT, HORIZON)
    assert list(scores.index) == list(active.index)
    assert scores["churn_risk"].between(0, 1).all()
    assert {"driver_1", "push_1", "driver_3", "push_3"} <= set(scores.columns)
    # customers already gone (true churn before the scoring date) are scored as risky
    gone = b.truth["churned_at"].reindex(scores.index).lt(SCORE_AT)
    assert scores.loc[gone, "churn_risk"].mean() > scores.loc[~gone, "churn_risk"].mean() + 0.2


def test_evaluating_and_scoring_together_gives_what_each_gives_alone(
    business: SyntheticFrames,
) -> None:
    b = business
    tables = (b.customers, b.orders, b.lines, b.interactions)
    alone = evaluate(*tables, SCORE_AT, HORIZON, ties=b.ties)
    scores = churn_risk(*tables, SCORE_AT, HORIZON, ties=b.ties)
    model = ChurnModel()
    together, risk = evaluate_and_score(*tables, SCORE_AT, HORIZON, ties=b.ties, model=model)
    assert together.auc == alone.auc and together.brier == alone.brier
    pd.testing.assert_frame_equal(together.calibration, alone.calibration)
    pd.testing.assert_frame_equal(risk, scores)
    assert model.churn_risk(churn_features(*tables, SCORE_AT, ties=b.ties).loc[risk.index]
                            ).equals(risk["churn_risk"])  # fmt: skip


def _with_future(b: SyntheticFrames, as_of: pd.Timestamp) -> SyntheticFrames:
    """The same business plus huge orders and contacts at and after `as_of`, by everybody."""
    who = b.customers["customer_id"].to_numpy()
    rng = np.random.default_rng(9)
    at = as_of + pd.to_timedelta(rng.integers(0, 200 * 86_400, len(who)), unit="s")
    ids = [f"X{i}" for i in range(len(who))]
    orders = pd.concat(
        [
            b.orders,
            pd.DataFrame({"customer_id": who, "transaction_id": ids, "at": at, "total": 1e6}),
        ],
        ignore_index=True,
    )
    lines = pd.concat(
        [
            b.lines,
            pd.DataFrame(
                {
                    "customer_id": who,
                    "transaction_id": ids,
                    "at": at,
                    "product_id": "P00001",
                    "category": "Electronics",
                    "quantity": 1,
                    "amount": 1e6,
                }
            ),
        ],
        ignore_index=True,
    )
    interactions = pd.concat(
        [
            b.interactions,
            pd.DataFrame(
                {
                    "customer_id": who,
                    "interaction_id": ids,
                    "at": at,
                    "type": "ticket",
                    "channel": "phone",
                    "sentiment": -1.0,
                    "satisfaction": 1.0,
                }
            ),
        ],
        ignore_index=True,
    )
    return SyntheticFrames(customers=b.customers, orders=orders, lines=lines,
                           interactions=interactions, ties=b.ties, truth=b.truth)  # fmt: skip


def test_nothing_after_as_of_changes_features_labels_or_scores(
    business: SyntheticFrames,
) -> None:
    b = business
    shifted = _with_future(b, SCORE_AT)
    # training set: features as of SCORE_AT - h, labels in [SCORE_AT - h, SCORE_AT)
    train_cut = SCORE_AT - pd.Timedelta(days=HORIZON)
    X, y = churn_dataset(b.customers, b.orders, b.lines, b.interactions, train_cut, HORIZON,
                         ties=b.ties)  # fmt: skip
    X2, y2 = churn_dataset(shifted.customers, shifted.orders, shifted.lines,
                           shifted.interactions, train_cut, HORIZON, ties=b.ties)  # fmt: skip
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)
    now = churn_features(b.customers, b.orders, b.lines, b.interactions, SCORE_AT, ties=b.ties)
    now2 = churn_features(shifted.customers, shifted.orders, shifted.lines, shifted.interactions,
                          SCORE_AT, ties=b.ties)  # fmt: skip
    pd.testing.assert_frame_equal(now, now2)
    scores = churn_risk(b.customers, b.orders, b.lines, b.interactions, SCORE_AT, HORIZON)
    scores2 = churn_risk(shifted.customers, shifted.orders, shifted.lines,
                         shifted.interactions, SCORE_AT, HORIZON)  # fmt: skip
    pd.testing.assert_frame_equal(scores, scores2)
