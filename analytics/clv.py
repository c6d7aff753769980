"""Customer lifetime value: how many purchases each customer will make over a horizon, and what
they are worth.

The probabilistic "buy till you die" models for non-contractual customers:

- `summary(orders, as_of)`: each customer's repeat purchases, recency and age (in days) and the
  mean value of the repeat purchases, as of a date;
- `BetaGeoModel`: BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"),
  how many purchases a customer will make and the chance they are still a customer;
- `GammaGammaModel`: Gamma-Gamma spend model (Fader & Hardie 2005, "The Gamma-Gamma model of
  monetary value"), the expected value of a customer's future purchases;
- `clv(...)`: the discounted expected value over a horizon from the two models;
- `discounted_margin_clv(...)`: the textbook formula for when only a margin per period and a
  retention rate are known;
- `backtest(orders, as_of, horizon_days)`: fit before `as_of`, count the purchases that
  followed, compare.

The models follow the scikit-learn contract (`fit` returns the model, fitted parameters end in an
underscore, predicting before fitting raises `NotFittedError`). The likelihoods are written with
scipy (the `lifetimes` package that used to do this is unmaintained since 2020).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from crm_graph.analytics.frames import require, utc

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
"""The columns `summary` returns, in order."""

DAYS_PER_YEAR = 365.25

Array = NDArray[np.float64]


def summary(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    customer_col: str = "customer_id",
    at_col: str = "at",
    value_col: str = "total",
) -> pd.DataFrame:
    """Each customer's purchase history as of `as_of`, in the form the models read.

    Orders placed the same (UTC) calendar day by the same customer count as one purchase, whose
    value is their sum, as in the BG/NBD literature and lifetimes'
    `summary_data_from_transaction_data`. Only orders strictly before `as_of` count (as
    everywhere in `analytics`: what is known as of `as_of` is what happened before it); orders
    at or after `as_of` are ignored, and customers with no order before `as_of` are not in the
    result. For data dated by day (midnight timestamps), pass the day after the last day to
    include: `as_of` 1997-10-01 includes the purchases of 30 September, the last day observed.

    Returns a frame indexed by customer id with:

    - `frequency`: the number of repeat purchases (purchase days after the first);
    - `recency`: days from the first purchase day to the last one (0 with no repeat purchase);
    - `T`: days from the first purchase day to the last day observed, the day of the last
      instant before `as_of` (the customer's age, counted in days as the purchases are: a
      purchase on the last day observed has recency T; as in the paper's published summary);
    - `monetary_value`: the mean value of the repeat purchases, 0 when there is none (the first
      purchase is left out, as the Gamma-Gamma model expects).
    """
    require(orders, (customer_col, at_col, value_col), "orders")
    as_of = utc(as_of)
    history = _history(orders, customer_col, at_col, value_col)
    history = history[history["at"].lt(as_of)]
    days = (
        history.assign(day=history["at"].dt.floor("D"))
        .groupby(["customer", "day"], sort=True)["value"]
        .sum()
        .reset_index()
    )
    by_customer = days.groupby("customer", sort=True)
    first = by_customer["day"].transform("min")
    repeat = days[days["day"] > first]
    one_day = pd.Timedelta(days=1)
    last_day = (as_of - pd.Timedelta(1, "ns")).floor("D")
    result = pd.DataFrame(
        {
            "frequency": by_customer.size().astype("int64") - 1,
            "recency": (by_customer["day"].max() - by_customer["day"].min()) / one_day,
            "T": (last_day - by_customer["day"].min()) / one_day,
        }
    )
    monetary = repeat.groupby("customer", sort=True)["value"].mean()
    result["monetary_value"] = monetary.reindex(result.index).fillna(0.0).astype(float)
    result.index.name = customer_col
    return result.loc[:, list(SUMMARY_COLUMNS)]


def bgnbd_log_likelihood(
    frequency: Any, recency: Any, T: Any, r: float, alpha: float, a: float, b: float
) -> Array:
    """Each customer's BG/NBD log-likelihood (FHL 2005, equation 6), in log space.

    `recency` and `T` in any one unit; `alpha` is in that unit.
    """
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped_after_last = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return np.asarray(common + np.logaddexp(still_alive, dropped_after_last), dtype=float)


class _BgnbdTotal:
    """The sum of `bgnbd_log_likelihood` over customers, for the optimiser's many calls: the
    terms that depend on x, recency or age alone are computed once per distinct value (a few
    dozen frequencies, a few thousand days), and customers without a repeat purchase (whose
    likelihood depends on x and age only) are summed by age. Same value as the sum, about four
    times faster on 80,000 customers."""

    def __init__(self, x: Array, t_x: Array, age: Array) -> None:
        repeat = x > 0
        self.ages, self.age_counts = np.unique(age[~repeat], return_counts=True)
        self.n_once = int((~repeat).sum())
        self.xs, self.x_of = np.unique(x[repeat], return_inverse=True)
        self.recencies, self.recency_of = np.unique(t_x[repeat], return_inverse=True)
        self.repeat_ages, self.repeat_age_of = np.unique(age[repeat], return_inverse=True)
        self.x_counts = np.bincount(self.x_of, minlength=len(self.xs))

    def __call__(self, r: float, alpha: float, a: float, b: float) -> float:
        base = -gammaln(r) + r * np.log(alpha) - betaln(a, b)
        # no repeat purchase: the common term at x = 0 is r log(alpha), plus the still-alive term
        once = r * (
            self.n_once * np.log(alpha) - float(np.dot(self.age_counts, np.log(alpha + self.ages)))
        )
        xs = self.xs
        common = gammaln(r + xs) + betaln(a, b + xs)
        log_a = np.log(a) - np.log(np.maximum(b + xs - 1, 1e-300))
        weight = (r + xs)[self.x_of]
        alive = -weight * np.log(alpha + self.repeat_ages)[self.repeat_age_of]
        dropped = log_a[self.x_of] - weight * np.log(alpha + self.recencies)[self.recency_of]
        repeaters = len(self.x_of) * base + float(np.dot(self.x_counts, common))
        return float(once + repeaters + np.logaddexp(alive, dropped).sum())


def gamma_gamma_log_likelihood(
    frequency: Any, monetary_value: Any, p: float, q: float, v: float
) -> Array:
    """Each customer's Gamma-Gamma log-likelihood of the mean repeat-purchase value given the
    number of repeat purchases (Fader & Hardie 2005, up to the term that does not depend on the
    parameters). Customers need `frequency` > 0 and `monetary_value` > 0."""
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    return np.asarray(
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + v),
        dtype=float,
    )


class BetaGeoModel(BaseEstimator):
    """BG/NBD: while alive, a customer buys at a Poisson rate (gamma across customers, shape r,
    rate alpha); after each purchase they drop out with a probability p (beta across customers,
    a, b).

    `fit(summary)` takes the frame `summary` returns (columns frequency, recency, T) and
    estimates `r_`, `alpha_` (in the unit of recency and T, days from `summary`), `a_`, `b_` by
    maximum likelihood; `log_likelihood_` is the total log-likelihood at the estimate (without
    the penalty).

    `penalizer` > 0 adds penalizer * (sum of squared log-parameters) to the mean negative
    log-likelihood, shrinking r, a, b towards 1 and alpha towards the customers' mean age: use it
    for small data sets, where the plain estimate runs off to extreme values (the fit warns with
    a `ConvergenceWarning` when a parameter ends beyond e^±25).
    """

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 2000, tol: float = 1e-10) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, summary: pd.DataFrame, y: None = None) -> BetaGeoModel:
        x, t_x, age = _bgnbd_columns(summary)
        if len(x) == 0:
            raise ValueError("cannot fit BG/NBD on an empty summary")
        scale = max(float(np.mean(age)), 1.0)
        total = _BgnbdTotal(x, t_x, age)

        def loss(log_params: Array) -> float:
            r, alpha, a, b = np.exp(log_params)
            fit = -total(r, alpha * scale, a, b) / len(x)
            return fit + self.penalizer * float(np.sum(log_params**2))

        solution = _minimize(loss, np.zeros(4), self.max_iter, self.tol)
        r, alpha, a, b = np.exp(solution.x)
        self.r_, self.alpha_, self.a_, self.b_ = float(r), float(alpha * scale), float(a), float(b)
        self.log_likelihood_ = float(np.sum(self._log_likelihood(x, t_x, age)))
        return self

    def params(self) -> dict[str, float]:
        """The fitted parameters by name."""
        check_is_fitted(self)
        return {"r": self.r_, "alpha": self.alpha_, "a": self.a_, "b": self.b_}

    def score(self, summary: pd.DataFrame, y: None = None) -> float:
        """Mean log-likelihood per customer (higher is better)."""
        check_is_fitted(self)
        x, t_x, age = _bgnbd_columns(summary)
        return float(np.mean(self._log_likelihood(x, t_x, age)))

    def predict_purchases(self, summary: pd.DataFrame, horizon_days: float) -> pd.Series:
        """Expected number of purchases by each customer in the `horizon_days` after `as_of`,
        given their history (FHL 2005, equation 10)."""
        check_is_fitted(self)
        x, t_x, age = _bgnbd_columns(summary)
        expected = self._conditional_expectation(x, t_x, age, float(horizon_days))
        return pd.Series(expected, index=summary.index, name="predicted_purchases")

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """The chance each customer has not dropped out by `as_of` (FHL 2005, equation 13)."""
        check_is_fitted(self)
        x, t_x, age = _bgnbd_columns(summary)
        alive = expit(-self._log_odds_dropped(x, t_x, age))
        return pd.Series(alive, index=summary.index, name="probability_alive")

    def _log_likelihood(self, x: Array, t_x: Array, age: Array) -> Array:
        return bgnbd_log_likelihood(x, t_x, age, self.r_, self.alpha_, self.a_, self.b_)

    def _log_odds_dropped(self, x: Array, t_x: Array, age: Array) -> Array:
        """log of P(dropped out after the last purchase) / P(still alive); -inf when x = 0."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        log_odds = np.full_like(x, -np.inf)
        repeat = x > 0
        xr, t_xr, age_r = x[repeat], t_x[repeat], age[repeat]
        growth = np.log(alpha + age_r) - np.log(alpha + t_xr)
        log_odds[repeat] = np.log(a) - np.log(b + xr - 1) + (r + xr) * growth
        return log_odds

    def _conditional_expectation(self, x: Array, t_x: Array, age: Array, t: float) -> Array:
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        if t <= 0:
            return np.zeros_like(x)
        z = t / (alpha + age + t)
        # ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z), rewritten with Euler's
        # transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) so that the
        # hypergeometric series stays tame for frequent buyers.
        tail = (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        if_alive = (a + b + x - 1) / (a - 1) * (1 - tail)
        expected = if_alive * expit(-self._log_odds_dropped(x, t_x, age))
        return np.asarray(np.maximum(expected, 0.0), dtype=float)  # no -1e-16 from rounding


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma: a customer's purchase values scatter (gamma, shape p) around their own mean,
    which varies across customers (gamma, shape q, scale v).

    `fit(summary)` uses the customers with at least one repeat purchase and a positive
    `monetary_value` and estimates `p_`, `q_`, `v_`. It assumes purchase value and frequency are
    independent; check their correlation among repeat buyers before trusting it. `penalizer`
    works as in `BetaGeoModel` (towards p = q = 1 and v = the mean purchase value).
    """

    def __init__(self, *, penalizer: float = 0.0, max_iter: int = 2000, tol: float = 1e-10) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, summary: pd.DataFrame, y: None = None) -> GammaGammaModel:
        require(summary, ("frequency", "monetary_value"), "summary")
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        if repeat.empty:
            raise ValueError("Gamma-Gamma needs customers with repeat purchases of positive value")
        x = repeat["frequency"].to_numpy(dtype=float)
        m = repeat["monetary_value"].to_numpy(dtype=float)
        scale = float(np.mean(m))

        def loss(log_params: Array) -> float:
            p, q, v = np.exp(log_params)
            fit = -float(np.mean(gamma_gamma_log_likelihood(x, m / scale, p, q, v)))
            return fit + self.penalizer * float(np.sum(log_params**2))

        solution = _minimize(loss, np.zeros(3), self.max_iter, self.tol)
        p, q, v = np.exp(solution.x)
        self.p_, self.q_, self.v_ = float(p), float(q), float(v * scale)
        self.log_likelihood_ = float(np.sum(gamma_gamma_log_likelihood(x, m, *self._pqv())))
        return self

    def params(self) -> dict[str, float]:
        """The fitted parameters by name."""
        check_is_fitted(self)
        return {"p": self.p_, "q": self.q_, "v": self.v_}

    def expected_value(self, summary: pd.DataFrame) -> pd.Series:
        """Each customer's expected value per future purchase: a weighted average of the
        population mean p*v/(q-1) and their own mean repeat-purchase value, the more weight on
        their own the more repeat purchases they made. Needs q > 1."""
        check_is_fitted(self)
        require(summary, ("frequency", "monetary_value"), "summary")
        p, q, v = self._pqv()
        if q <= 1:
            raise ValueError(f"the expected value is infinite for q <= 1 (fitted q = {q:.3g})")
        x = summary["frequency"].to_numpy(dtype=float)
        m = np.where(x > 0, summary["monetary_value"].to_numpy(dtype=float), 0.0)
        expected = p * (v + x * m) / (p * x + q - 1)
        return pd.Series(expected, index=summary.index, name="expected_value")

    def _pqv(self) -> tuple[float, float, float]:
        return self.p_, self.q_, self.v_


def clv(
    summary: pd.DataFrame,
    bgnbd: BetaGeoModel,
    gamma_gamma: GammaGammaModel,
    horizon_days: float,
    *,
    discount_rate_annual: float = 0.1,
    margin: float = 1.0,
    step_days: float = 30.0,
) -> pd.Series:
    """Each customer's discounted expected value over the `horizon_days` after `as_of`.

    The horizon is cut into steps of `step_days` (the last one may be shorter); the purchases
    expected in each step (BG/NBD) times the expected value per purchase (Gamma-Gamma) times
    `margin` are discounted from the end of the step at `discount_rate_annual` (compounded
    yearly, 365.25 days a year) and summed.
    """
    check_is_fitted(bgnbd)
    check_is_fitted(gamma_gamma)
    if horizon_days < 0 or step_days <= 0:
        raise ValueError("horizon_days must be >= 0 and step_days > 0")
    ends = [*np.arange(step_days, horizon_days, step_days).tolist(), float(horizon_days)]
    value_per_purchase = gamma_gamma.expected_value(summary).to_numpy()
    total = np.zeros(len(summary))
    before = np.zeros(len(summary))
    for end in ends:
        cumulative = bgnbd.predict_purchases(summary, end).to_numpy()
        discount = (1 + discount_rate_annual) ** (-end / DAYS_PER_YEAR)
        total += (cumulative - before) * discount
        before = cumulative
    return pd.Series(margin * value_per_purchase * total, index=summary.index, name="clv")


def discounted_margin_clv(
    margin_per_period: float | pd.Series,
    retention_rate: float,
    discount_rate: float,
    *,
    periods: int | None = None,
) -> float | pd.Series:
    """The simple lifetime value for when only totals are known: a customer who is still there
    at the end of a period brings `margin_per_period` then; each period they stay with
    probability `retention_rate`; money is discounted at `discount_rate` per period.

    CLV = sum over t = 1..periods of m * (r / (1 + d))^t, which for an unlimited number of
    periods (`periods=None`) is m * r / (1 + d - r) (Gupta & Lehmann 2003). For example a yearly
    margin of 100, 80% retention and 10% discounting give 100 * 0.8 / 0.3 = 266.67.
    """
    if not 0 <= retention_rate <= 1 or discount_rate <= -1:
        raise ValueError("retention_rate must be in [0, 1] and discount_rate > -1")
    ratio = retention_rate / (1 + discount_rate)
    if periods is None:
        if ratio >= 1:
            raise ValueError("with no discounting and full retention the value is unbounded")
        factor = ratio / (1 - ratio)
    else:
        factor = float(sum(ratio**t for t in range(1, periods + 1)))
    return margin_per_period * factor


def backtest(
    orders: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon_days: float,
    *,
    customer_col: str = "customer_id",
    at_col: str = "at",
    value_col: str = "total",
    penalizer: float = 0.0,
) -> dict[str, Any]:
    """Fit BG/NBD on the orders strictly before `as_of`, predict each customer's purchases in
    [as_of, as_of + horizon_days), and count the purchases they actually made then.

    The same cut as everywhere in `analytics`: an order exactly at `as_of` is a holdout
    purchase, not a calibration one, and an order exactly at `as_of + horizon_days` is in
    neither. Purchases are counted as in `summary` (one per customer and UTC day); only the
    customers known before `as_of` are predicted and counted (customers acquired later are left
    out). The orders must cover the whole holdout. `penalizer` is passed to `BetaGeoModel`.

    Returns a dict with `predicted_purchases` and `actual_purchases` (totals over customers),
    `relative_error` ((predicted - actual) / actual), `customers` (the summary with
    `predicted_purchases`, `actual_purchases` and `probability_alive` per customer), `params`
    (r, alpha in days, a, b), `log_likelihood`, `as_of` and `horizon_days`.
    """
    require(orders, (customer_col, at_col, value_col), "orders")
    as_of = utc(as_of)
    calibration = summary(
        orders, as_of, customer_col=customer_col, at_col=at_col, value_col=value_col
    )
    model = BetaGeoModel(penalizer=penalizer).fit(calibration)
    history = _history(orders, customer_col, at_col, value_col)
    end = as_of + pd.Timedelta(days=horizon_days)
    holdout = history[history["at"].ge(as_of) & history["at"].lt(end)]
    holdout_days = holdout.assign(day=holdout["at"].dt.floor("D")).drop_duplicates(
        ["customer", "day"]
    )
    actual = holdout_days.groupby("customer").size().reindex(calibration.index, fill_value=0)
    customers = calibration.assign(
        predicted_purchases=model.predict_purchases(calibration, horizon_days),
        actual_purchases=actual.astype("int64"),
        probability_alive=model.probability_alive(calibration),
    )
    predicted = float(customers["predicted_purchases"].sum())
    actual_total = int(customers["actual_purchases"].sum())
    return {
        "predicted_purchases": predicted,
        "actual_purchases": actual_total,
        "relative_error": (predicted - actual_total) / actual_total if actual_total else np.nan,
        "customers": customers,
        "params": model.params(),
        "log_likelihood": model.log_likelihood_,
        "as_of": as_of,
        "horizon_days": float(horizon_days),
    }


def _bgnbd_columns(summary: pd.DataFrame) -> tuple[Array, Array, Array]:
    require(summary, ("frequency", "recency", "T"), "summary")
    x = summary["frequency"].to_numpy(dtype=float)
    t_x = summary["recency"].to_numpy(dtype=float)
    age = summary["T"].to_numpy(dtype=float)
    if (x < 0).any() or (t_x < 0).any() or (t_x > age).any():
        raise ValueError("summary needs frequency >= 0 and 0 <= recency <= T")
    return x, t_x, age


def _minimize(loss: Any, start: Array, max_iter: int, tol: float) -> Any:
    """Minimise over log-parameters: a quasi-Newton search, then Nelder-Mead to polish.
    Parameters so extreme that the likelihood overflows are simply a very bad fit."""

    def bounded(log_params: Array) -> float:
        with np.errstate(all="ignore"):
            value = loss(log_params)
        return value if np.isfinite(value) else 1e100

    first = minimize(bounded, start, method="L-BFGS-B", options={"maxiter": max_iter})
    solution = minimize(
        bounded,
        first.x,
        method="Nelder-Mead",
        options={"maxiter": max_iter, "xatol": 1e-8, "fatol": tol},
    )
    if not (solution.success and np.isfinite(solution.fun)):
        warnings.warn(
            f"the fit did not converge: {solution.message}", ConvergenceWarning, stacklevel=3
        )
    elif np.abs(solution.x).max() > 25:
        warnings.warn(
            "the data do not pin the parameters down (a parameter ran off beyond e^±25): "
            "fit on more customers or set a penalizer",
            ConvergenceWarning,
            stacklevel=3,
        )
    return solution


def _history(orders: pd.DataFrame, customer_col: str, at_col: str, value_col: str) -> pd.DataFrame:
    history = pd.DataFrame(
        {
            "customer": orders[customer_col].reset_index(drop=True),
            "at": pd.to_datetime(orders[at_col], utc=True).reset_index(drop=True),
            "value": pd.to_numeric(orders[value_col]).astype(float).reset_index(drop=True),
        }
    )
    return history[history["customer"].notna() & history["at"].notna()]
