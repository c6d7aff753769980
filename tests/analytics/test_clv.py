from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from crm_graph.analytics.clv import (
    SUMMARY_COLUMNS,
    BetaGeoModel,
    GammaGammaModel,
    _BgnbdTotal,
    backtest,
    bgnbd_log_likelihood,
    clv,
    discounted_margin_clv,
    gamma_gamma_log_likelihood,
    summary,
)
from crm_graph.analytics.frames import FrameError
from tests.analytics.cdnow import CALIBRATION_END, cdnow_orders, cdnow_published_summary

# Fader, Hardie & Lee (2005), CDNOW, time in weeks.
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_LOG_LIKELIHOOD = -9582.4
# Fader & Hardie (2005), the Gamma-Gamma spend model on the same customers.
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}

AS_OF = pd.Timestamp("2024-02-01", tz="UTC")


def _orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [c for c, _, _ in rows],
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "at": pd.to_datetime([at for _, at, _ in rows], utc=True, format="ISO8601"),
            "total": [v for _, _, v in rows],
        }
    )


def _bgnbd(r: float, alpha: float, a: float, b: float) -> BetaGeoModel:
    model = BetaGeoModel()
    model.r_, model.alpha_, model.a_, model.b_ = r, alpha, a, b
    return model


def _gamma_gamma(p: float, q: float, v: float) -> GammaGammaModel:
    model = GammaGammaModel()
    model.p_, model.q_, model.v_ = p, q, v
    return model


def _summary(
    rows: list[tuple[int, float, float]], monetary: list[float] | None = None
) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["frequency", "recency", "T"])
    frame["monetary_value"] = monetary if monetary is not None else 0.0
    return frame


# --- summary -------------------------------------------------------------------------------


def test_summary_merges_same_day_orders_and_leaves_the_first_purchase_out_of_the_value() -> None:
    # given a customer with two orders on their first day, two repeat days and a later order,
    # and a customer with one order
    orders = _orders(
        [
            ("ann", "2024-01-01T10:00", 10.0),
            ("ann", "2024-01-01T15:00", 5.0),
            ("ann", "2024-01-11T09:00", 20.0),
            ("ann", "2024-01-31T23:59", 40.0),
            ("ann", "2024-02-15", 999.0),
            ("bob", "2024-01-21T08:00", 30.0),
        ]
    )
    # when summarised as of 1 February
    table = summary(orders, AS_OF)
    # then ann has 2 repeat purchases, the last 30 days after her first, on the last day observed
    # (31 January: her age is 30 days too), and her repeat purchases are worth 30 on average;
    # bob has none
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert table.index.name == "customer_id"
    assert table.loc["ann"].to_dict() == {
        "frequency": 2,
        "recency": 30.0,
        "T": 30.0,
        "monetary_value": 30.0,
    }
    assert table.loc["bob"].to_dict() == {
        "frequency": 0,
        "recency": 0.0,
        "T": 10.0,
        "monetary_value": 0.0,
    }


def test_summary_ignores_customers_who_start_after_as_of_and_names_missing_columns() -> None:
    orders = _orders([("ann", "2024-01-01", 10.0), ("zoe", "2024-03-01", 10.0)])
    assert list(summary(orders, AS_OF).index) == ["ann"]
    with pytest.raises(FrameError, match="lacks column\\(s\\) at"):
        summary(orders.drop(columns=["at"]), AS_OF)


def test_summary_of_the_cdnow_sample_is_the_published_one() -> None:
    # given the 2,357 CDNOW customers' transactions and the paper's summary (weeks)
    published = cdnow_published_summary()
    # when summarised as of the end of 30 September 1997
    ours = summary(cdnow_orders("sample"), CALIBRATION_END)
    # then the same customers, repeat purchases, recency, age and mean value (to rounding)
    assert list(ours.index) == list(published.index)
    assert (ours["frequency"] == published["frequency"]).all()
    np.testing.assert_allclose(ours["recency"] / 7, published["recency"], atol=0.005)
    np.testing.assert_allclose(ours["T"] / 7, published["T"], atol=0.005)
    np.testing.assert_allclose(ours["monetary_value"], published["monetary_value"], atol=0.005)


# --- BG/NBD --------------------------------------------------------------------------------


def _bgnbd_likelihood_by_hand(
    x: int, t_x: float, T: float, r: float, alpha: float, a: float, b: float
) -> float:
    """FHL 2005 equation 6, written out with gamma functions."""
    beta = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    rate_part = math.gamma(r + x) * alpha**r / math.gamma(r)
    alive = math.gamma(a) * math.gamma(b + x) / math.gamma(a + b + x) / beta
    likelihood = alive * rate_part / (alpha + T) ** (r + x)
    if x > 0:
        dropped = math.gamma(a + 1) * math.gamma(b + x - 1) / math.gamma(a + b + x) / beta
        likelihood += dropped * rate_part / (alpha + t_x) ** (r + x)
    return math.log(likelihood)


@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(0, 0.0, 38.86), (1, 1.71, 38.86), (2, 30.43, 38.86), (5, 20.0, 32.0)]
)
def test_bgnbd_log_likelihood_matches_the_formula_by_hand(x: int, t_x: float, T: float) -> None:
    params = PUBLISHED_BGNBD
    ours = bgnbd_log_likelihood([x], [t_x], [T], **params)[0]
    assert ours == pytest.approx(_bgnbd_likelihood_by_hand(x, t_x, T, **params), rel=1e-12)


def test_bgnbd_log_likelihood_of_a_customer_without_repeat_purchase() -> None:
    # with x = 0 the likelihood is just P(no purchase in T) = (alpha / (alpha + T))^r
    ours = bgnbd_log_likelihood([0], [0.0], [10.0], r=2.0, alpha=5.0, a=1.0, b=1.0)[0]
    assert ours == pytest.approx(2.0 * math.log(5.0 / 15.0))


def test_bgnbd_log_likelihood_on_cdnow_at_the_published_estimates() -> None:
    published = cdnow_published_summary()
    total = bgnbd_log_likelihood(
        published["frequency"], published["recency"], published["T"], **PUBLISHED_BGNBD
    ).sum()
    assert total == pytest.approx(PUBLISHED_LOG_LIKELIHOOD, abs=0.1)


@settings(max_examples=60, deadline=None)
@given(
    customers=st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 40), st.integers(0, 40)),
        min_size=1,
        max_size=60,
    ),
    params=st.tuples(*(st.floats(0.05, 20.0) for _ in range(4))),
)
def test_the_fit_sums_the_same_likelihood_as_the_formula(
    customers: list[tuple[int, int, int]], params: tuple[float, float, float, float]
) -> None:
    # the optimiser's grouped total (terms computed per distinct frequency, recency and age)
    # is the sum of the customers' log-likelihoods, repeated values and x = 0 included
    x = np.array([c[0] for c in customers], dtype=float)
    t_x = np.array([min(c[1], c[2]) if c[0] else 0 for c in customers], dtype=float)
    age = np.array([c[2] + 0.5 for c in customers], dtype=float)
    expected = bgnbd_log_likelihood(x, t_x, age, *params).sum()
    assert _BgnbdTotal(x, t_x, age)(*params) == pytest.approx(expected, rel=1e-9)


def test_conditional_expectation_of_the_papers_example_customer() -> None:
    # FHL 2005, section 5: 2 repeat purchases, the last at week 30.43, observed 38.86 weeks,
    # is expected to make 1.226 purchases in the next 39 weeks
    customer = _summary([(2, 30.43, 38.86)])
    model = _bgnbd(**PUBLISHED_BGNBD)
    assert model.predict_purchases(customer, 39).iloc[0] == pytest.approx(1.226, abs=5e-4)


def test_predictions_match_the_reference_library() -> None:
    # values computed with lifetimes 0.11.3 (BetaGeoFitter, GammaGammaFitter) at the published
    # parameters
    customers = _summary(
        [
            (0, 0.0, 38.86),
            (1, 1.71, 38.86),
            (2, 30.43, 38.86),
            (7, 35.0, 38.86),
            (29, 38.0, 38.86),
            (60, 38.5, 38.86),
        ]
    )
    model = _bgnbd(**PUBLISHED_BGNBD)
    np.testing.assert_allclose(
        model.predict_purchases(customers, 39),
        [0.195098, 0.203187, 1.226028, 4.387488, 19.452294, 40.805223],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        model.predict_purchases(customers, 1),
        [0.005596, 0.006063, 0.037448, 0.140194, 0.640024, 1.351084],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        model.probability_alive(customers),
        [1.0, 0.212101, 0.726579, 0.843768, 0.955222, 0.979092],
        atol=1e-6,
    )
    spenders = pd.DataFrame({"frequency": [0, 1, 2, 10], "monetary_value": [0, 11.77, 22.35, 50.0]})
    np.testing.assert_allclose(
        _gamma_gamma(**PUBLISHED_GAMMA_GAMMA).expected_value(spenders),
        [35.218978, 18.916852, 24.663714, 49.379215],
        atol=1e-6,
    )


def test_bgnbd_fit_on_cdnow_lands_on_the_published_estimates() -> None:
    # given the CDNOW calibration summary, in days
    calibration = summary(cdnow_orders("sample"), CALIBRATION_END)
    # when BG/NBD is fitted
    model = BetaGeoModel().fit(calibration)
    # then the estimates are the paper's (alpha per week = alpha per day * 7)
    assert model.r_ == pytest.approx(PUBLISHED_BGNBD["r"], abs=0.002)
    assert model.alpha_ / 7 == pytest.approx(PUBLISHED_BGNBD["alpha"], abs=0.01)
    assert model.a_ == pytest.approx(PUBLISHED_BGNBD["a"], abs=0.002)
    assert model.b_ == pytest.approx(PUBLISHED_BGNBD["b"], abs=0.01)
    # the log-likelihood in days differs from the weeks one by the change of unit only:
    # each repeat purchase's density carries a factor 1/7
    weeks = PUBLISHED_LOG_LIKELIHOOD - calibration["frequency"].sum() * math.log(7)
    assert model.log_likelihood_ == pytest.approx(weeks, abs=0.1)


def test_gamma_gamma_fit_on_cdnow_lands_on_the_published_estimates() -> None:
    model = GammaGammaModel().fit(cdnow_published_summary())
    assert model.p_ == pytest.approx(PUBLISHED_GAMMA_GAMMA["p"], abs=0.01)
    assert model.q_ == pytest.approx(PUBLISHED_GAMMA_GAMMA["q"], abs=0.01)
    assert model.v_ == pytest.approx(PUBLISHED_GAMMA_GAMMA["v"], abs=0.02)


def test_gamma_gamma_log_likelihood_matches_the_density_by_hand() -> None:
    p, q, v, x, m = 6.25, 3.74, 15.44, 3, 20.0
    by_hand = math.log(
        math.gamma(p * x + q)
        / (math.gamma(p * x) * math.gamma(q))
        * v**q
        * m ** (p * x - 1)
        * x ** (p * x)
        / (v + x * m) ** (p * x + q)
    )
    assert gamma_gamma_log_likelihood([x], [m], p, q, v)[0] == pytest.approx(by_hand, rel=1e-12)


def test_models_refuse_to_predict_unfitted() -> None:
    customers = _summary([(1, 3.0, 10.0)], monetary=[5.0])
    with pytest.raises(NotFittedError):
        BetaGeoModel().predict_purchases(customers, 30)
    with pytest.raises(NotFittedError):
        BetaGeoModel().probability_alive(customers)
    with pytest.raises(NotFittedError):
        GammaGammaModel().expected_value(customers)
    with pytest.raises(NotFittedError):
        clv(customers, BetaGeoModel(), _gamma_gamma(6.0, 4.0, 15.0), 365)


def test_models_follow_the_scikit_learn_contract() -> None:
    model = BetaGeoModel(max_iter=500)
    assert clone(model).get_params() == {"penalizer": 0.0, "max_iter": 500, "tol": 1e-10}
    customers = _summary([(0, 0.0, 30.0), (2, 20.0, 30.0), (1, 5.0, 25.0), (4, 28.0, 30.0)])
    assert model.fit(customers) is model
    assert set(model.params()) == {"r", "alpha", "a", "b"}


def test_too_little_data_warns_and_a_penalizer_tames_it() -> None:
    # given a single customer: the likelihood has no maximum, the parameters run off
    lone = _summary([(3, 20.0, 30.0)])
    with pytest.warns(ConvergenceWarning, match="penalizer"):
        BetaGeoModel().fit(lone)
    # when a penalizer is set, the fit stays finite and says something sensible
    model = BetaGeoModel(penalizer=0.1).fit(lone)
    assert all(0.01 < value < 1000 for value in model.params().values())
    assert 0 < model.predict_purchases(lone, 30).iloc[0] < 10


def test_fitting_names_a_missing_column() -> None:
    with pytest.raises(FrameError, match="summary lacks column\\(s\\) recency"):
        BetaGeoModel().fit(pd.DataFrame({"frequency": [1], "T": [3.0]}))


# --- lifetime value ------------------------------------------------------------------------


def test_clv_without_discounting_is_purchases_times_value_times_margin() -> None:
    customers = _summary([(0, 0.0, 272.0), (2, 213.0, 272.0)], monetary=[0.0, 22.35])
    bgnbd = _bgnbd(0.243, 4.414 * 7, 0.793, 2.426)
    gamma_gamma = _gamma_gamma(**PUBLISHED_GAMMA_GAMMA)
    expected = bgnbd.predict_purchases(customers, 365) * gamma_gamma.expected_value(customers) * 0.3
    value = clv(customers, bgnbd, gamma_gamma, 365, discount_rate_annual=0.0, margin=0.3)
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_clv_discounts_each_step_from_its_end() -> None:
    customers = _summary([(2, 213.0, 272.0)], monetary=[22.35])
    bgnbd = _bgnbd(0.243, 4.414 * 7, 0.793, 2.426)
    gamma_gamma = _gamma_gamma(**PUBLISHED_GAMMA_GAMMA)
    value = gamma_gamma.expected_value(customers).iloc[0]
    first = bgnbd.predict_purchases(customers, 200).iloc[0]
    both = bgnbd.predict_purchases(customers, 300).iloc[0]
    by_hand = value * (first / 1.1 ** (200 / 365.25) + (both - first) / 1.1 ** (300 / 365.25))
    ours = clv(customers, bgnbd, gamma_gamma, 300, discount_rate_annual=0.1, step_days=200)
    assert ours.iloc[0] == pytest.approx(by_hand, rel=1e-12)


def test_discounted_margin_clv_is_the_textbook_formula() -> None:
    # a yearly margin of 100, 80% retention, 10% discount rate: 100 * 0.8 / (1 + 0.1 - 0.8)
    assert discounted_margin_clv(100.0, 0.8, 0.1) == pytest.approx(266.6667, abs=1e-4)
    assert discounted_margin_clv(100.0, 0.8, 0.1, periods=1) == pytest.approx(80 / 1.1)
    assert discounted_margin_clv(100.0, 0.8, 0.1, periods=2) == pytest.approx(80 / 1.1 + 64 / 1.21)
    assert discounted_margin_clv(100.0, 0.8, 0.1, periods=500) == pytest.approx(266.6667, 1e-4)
    margins = pd.Series([10.0, 20.0], index=["ann", "bob"])
    per_customer = discounted_margin_clv(margins, 0.5, 0.0)
    assert isinstance(per_customer, pd.Series)
    assert per_customer.to_dict() == {"ann": 10.0, "bob": 20.0}
    with pytest.raises(ValueError, match="unbounded"):
        discounted_margin_clv(100.0, 1.0, 0.0)


# --- properties ----------------------------------------------------------------------------

histories = st.tuples(
    st.integers(min_value=0, max_value=60),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=0.1, max_value=400.0),
).map(lambda h: (h[0], 0.0 if h[0] == 0 else h[1] * h[2], h[2]))
parameters = st.tuples(
    st.floats(min_value=0.05, max_value=5.0),
    st.floats(min_value=0.5, max_value=100.0),
    st.floats(min_value=0.05, max_value=5.0).filter(lambda a: abs(a - 1) > 0.01),
    st.floats(min_value=0.05, max_value=10.0),
)


@settings(max_examples=150, deadline=None, database=None)
@given(
    history=histories,
    params=parameters,
    horizons=st.tuples(st.floats(0.0, 500.0), st.floats(0.0, 500.0)),
)
def test_predictions_are_sane_for_any_history(
    history: tuple[int, float, float],
    params: tuple[float, float, float, float],
    horizons: tuple[float, float],
) -> None:
    model = _bgnbd(*params)
    customer = _summary([history])
    short, long = sorted(horizons)
    alive = model.probability_alive(customer).iloc[0]
    predicted_short = model.predict_purchases(customer, short).iloc[0]
    predicted_long = model.predict_purchases(customer, long).iloc[0]
    assert 0 < alive <= 1
    assert 0 <= predicted_short <= predicted_long + 1e-9 * max(1.0, predicted_long)
    assert np.isfinite(predicted_long)


# --- backtest ------------------------------------------------------------------------------


def test_backtest_counts_purchase_days_in_the_holdout_of_customers_known_at_as_of() -> None:
    # given calibration orders up to 1 February, then a 30-day holdout
    orders = _orders(
        [
            ("ann", "2023-11-01", 10.0),
            ("ann", "2023-12-01", 10.0),
            ("ann", "2024-01-15", 10.0),
            ("ann", "2024-02-05T10:00", 10.0),  # two orders, one purchase day
            ("ann", "2024-02-05T18:00", 10.0),
            ("ann", "2024-02-20", 10.0),
            ("ann", "2024-03-02T00:00:01", 10.0),  # after the holdout
            ("bob", "2023-12-10", 20.0),
            ("bob", "2024-03-01T23:59:59", 20.0),  # the holdout's last day counts
            ("cat", "2024-01-20", 30.0),
            ("cat", "2024-01-25", 30.0),
            ("zoe", "2024-02-10", 99.0),  # new after as_of: not predicted, not counted
        ]
    )
    # when backtested over 30 days (three customers: the fit needs a penalizer)
    result = backtest(orders, AS_OF, 30, penalizer=0.01)
    # then the actual purchases are ann 2, bob 1, cat 0
    customers = result["customers"]
    assert customers["actual_purchases"].to_dict() == {"ann": 2, "bob": 1, "cat": 0}
    assert result["actual_purchases"] == 3
    assert result["predicted_purchases"] == pytest.approx(customers["predicted_purchases"].sum())
    assert result["relative_error"] == pytest.approx((result["predicted_purchases"] - 3) / 3)
    assert set(result["params"]) == {"r", "alpha", "a", "b"}
    assert list(customers.columns) == [
        *SUMMARY_COLUMNS,
        "predicted_purchases",
        "actual_purchases",
        "probability_alive",
    ]


def test_an_order_exactly_at_as_of_is_a_holdout_purchase_and_one_at_the_end_is_not() -> None:
    # given date-only orders (midnight), one exactly at as_of and one exactly at as_of + 30 days
    orders = _orders(
        [
            ("ann", "2023-12-01", 10.0),
            ("ann", "2024-01-10", 10.0),
            ("ann", "2024-02-01", 10.0),  # exactly at as_of: known only after it
            ("ann", "2024-03-02", 10.0),  # exactly at as_of + 30 days: after the holdout
            ("bob", "2024-01-05", 20.0),
            ("bob", "2024-01-20", 20.0),
            ("cat", "2024-01-31T23:59:59", 30.0),  # the last instant before as_of: known
            ("dan", "2024-02-01", 40.0),  # first order at as_of: not known at as_of
        ]
    )
    # when summarised as of 1 February
    table = summary(orders, AS_OF)
    # then the order at as_of is not in the summary, and neither is the customer it would start
    assert list(table.index) == ["ann", "bob", "cat"]
    assert table.loc["ann", "frequency"] == 1
    assert table.loc["ann", "recency"] == 40.0
    assert table.loc["ann", "T"] == 61.0  # to 31 January, the last day observed
    # when backtested as of 1 February over 30 days
    result = backtest(orders, AS_OF, 30, penalizer=0.01)
    # then the order at as_of is ann's one holdout purchase, the one at as_of + 30 days is not
    # counted, and the calibration is the summary
    customers = result["customers"]
    assert customers["actual_purchases"].to_dict() == {"ann": 1, "bob": 0, "cat": 0}
    pd.testing.assert_frame_equal(customers.loc[:, list(SUMMARY_COLUMNS)], table)
