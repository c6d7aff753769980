"""`python -m bench.cdnow`: the CDNOW CLV back-test (fitted up to 1997-09-30, the next 273 days
forecast) with our BG/NBD beside the other "buy till you die" models: the `lifetimes` package's
BG/NBD, modified BG/NBD and Pareto/NBD (a dev dependency, imported here only), and Abe's (2009)
hierarchical Bayes Pareto/NBD, sampled here. Each is fitted on the same calibration summary (in
weeks) and asked for each customer's expected purchases in the 39 holdout weeks (the
"conditional" forecast, which knows each customer's history). For the `lifetimes` models the
"unconditional" forecast is printed too: the cohort's expected purchases knowing only when each
customer started, the tracking forecast of the papers' figures. Its last column is the error of
the whole 78 weeks (calibration fit plus holdout forecast), the figure those tracking plots show.

Prints the totals against the purchases that followed, for the paper's 2,357-customer sample and
the full 23,570-customer cohort. Needs the `lifetimes` wheel, which ships the data. `--quick`
skips the full cohort (the hierarchical model takes about a minute on it).
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
from scipy.stats import invwishart

from crm_graph.analytics.clv import backtest


def abe_pareto_nbd(
    x: np.ndarray,
    t_x: np.ndarray,
    age: np.ndarray,
    horizon: float,
    draws: int = 6000,
    burn_in: int = 2000,
    seed: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Abe's (2009) Pareto/NBD "M1": each customer buys at rate lambda while alive and dies at
    rate mu; (log lambda, log mu) are bivariate normal across customers (mean theta, covariance
    gamma). Sampled by Gibbs with data augmentation (alive at the end of calibration, else the
    time of death), a random-walk Metropolis step per customer (step sizes tuned during burn-in)
    and conjugate draws of theta (flat normal prior) and gamma (inverse Wishart).

    Returns each customer's expected purchases in `horizon`, averaged over every fifth draw
    after burn-in, and the last draw of theta and gamma (for comparison with Abe's estimates).
    """
    rng = np.random.default_rng(seed)
    n = len(x)
    eta = np.full((n, 2), np.log(0.05))  # per customer: log lambda, log mu
    theta = eta.mean(axis=0)
    gamma = np.eye(2)
    prior_precision, prior_mean = np.eye(2) * 0.01, np.zeros(2)
    prior_df, prior_scale = 4, np.eye(2) * 4.0
    step = np.full(n, 0.5)
    accepted = np.zeros(n)
    expected = np.zeros(n)
    kept = 0
    for draw in range(draws):
        rate, death = np.exp(eta[:, 0]), np.exp(eta[:, 1])
        both = rate + death
        with np.errstate(over="ignore"):
            p_alive = 1.0 / (1.0 + death / both * np.expm1(both * (age - t_x)))
        alive = rng.random(n) < p_alive
        dead_at = t_x - np.log1p(-rng.random(n) * -np.expm1(-both * (age - t_x))) / both
        lifetime = np.where(alive, age, dead_at)
        precision = np.linalg.inv(gamma)
        proposal = eta + rng.standard_normal((n, 2)) * step[:, None]
        given = (x, lifetime, alive, theta, precision)
        gain = _log_posterior(proposal, *given) - _log_posterior(eta, *given)
        take = np.log(rng.random(n)) < gain
        eta[take] = proposal[take]
        accepted += take
        if draw < burn_in and draw % 100 == 99:
            share = accepted / 100
            step *= np.where(share > 0.3, 1.2, np.where(share < 0.2, 0.8, 1.0))
            accepted[:] = 0
        covariance = np.linalg.inv(prior_precision + n * precision)
        mean = covariance @ (prior_precision @ prior_mean + precision @ eta.sum(axis=0))
        theta = rng.multivariate_normal(mean, covariance)
        deviation = eta - theta
        gamma = invwishart.rvs(
            df=prior_df + n, scale=prior_scale + deviation.T @ deviation, random_state=rng
        )
        if draw >= burn_in and draw % 5 == 0:
            rate, death = np.exp(eta[:, 0]), np.exp(eta[:, 1])
            expected += np.where(alive, rate / death * -np.expm1(-death * horizon), 0.0)
            kept += 1
    return expected / kept, theta, gamma


def _log_posterior(
    eta: np.ndarray,
    x: np.ndarray,
    lifetime: np.ndarray,
    alive: np.ndarray,
    theta: np.ndarray,
    precision: np.ndarray,
) -> np.ndarray:
    """Each customer's log posterior of (log lambda, log mu), up to a constant: x purchases over
    `lifetime` (the age when alive, else the time of death), death if not alive, and the
    bivariate normal prior."""
    deviation = eta - theta
    prior = -0.5 * np.einsum("ij,jk,ik->i", deviation, precision, deviation)
    rate, death = np.exp(eta[:, 0]), np.exp(eta[:, 1])
    return x * eta[:, 0] - rate * lifetime + ~alive * eta[:, 1] - death * lifetime + prior


def main(argv: list[str] | None = None) -> int:
    from tests.analytics.cdnow import CALIBRATION_END, HOLDOUT_DAYS, cdnow_orders

    parser = argparse.ArgumentParser(prog="python -m bench.cdnow", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the 2,357-customer sample only")
    arguments = parser.parse_args(argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes warns on import under pandas 3
        from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    others = {"lifetimes BG/NBD": BetaGeoFitter, "lifetimes MBG/NBD": ModifiedBetaGeoFitter,
              "lifetimes Pareto/NBD": ParetoNBDFitter}  # fmt: skip
    print(f"{'data':<8}{'model':<24}{'forecast':<15}{'predicted':>11}{'actual':>9}{'error':>9}"
          f"{'78 weeks':>10}")  # fmt: skip
    levels: list[str] = []
    for which in ("sample",) if arguments.quick else ("sample", "master"):
        result = backtest(cdnow_orders(which), CALIBRATION_END, HOLDOUT_DAYS)
        customers = result["customers"]
        actual = int(customers["actual_purchases"].sum())
        weeks = HOLDOUT_DAYS / 7
        x = customers["frequency"].to_numpy(float)
        t_x = customers["recency"].to_numpy(float) / 7
        age = customers["T"].to_numpy(float) / 7
        rows: list[tuple[str, str, float, str]] = [
            ("crm-graph BG/NBD", "conditional", float(result["predicted_purchases"]), "")
        ]
        for name, fitter in others.items():
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                model = fitter().fit(x, t_x, age)
                conditional = model.conditional_expected_number_of_purchases_up_to_time(
                    weeks, x, t_x, age
                )
                until = model.expected_number_of_purchases_up_to_time
                fitted, tracked = np.sum(until(age)), np.sum(until(age + weeks))
            rows.append((name, "conditional", float(np.sum(conditional)), ""))
            whole = (tracked - x.sum() - actual) / (x.sum() + actual)
            rows.append((name, "unconditional", float(tracked - fitted), f"{whole:+.1%}"))
        hierarchical, theta, gamma = abe_pareto_nbd(x, t_x, age, weeks)
        rows.append(("Abe HB Pareto/NBD", "conditional", float(hierarchical.sum()), ""))
        levels.append(
            f"{which}: mean log lambda {theta[0]:.2f}, log mu {theta[1]:.2f}; variances "
            f"{gamma[0, 0]:.2f}, {gamma[1, 1]:.2f}, covariance {gamma[0, 1]:.2f}"
        )
        for name, form, total, whole in rows:
            error = (total - actual) / actual
            print(f"{which:<8}{name:<24}{form:<15}{total:>11,.1f}{actual:>9,}{error:>+9.1%}"
                  f"{whole:>10}")  # fmt: skip
    print("Abe HB Pareto/NBD, cohort parameters at the last draw:", *levels, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
