"""The hierarchical Bayes Pareto/NBD of `bench.cdnow` (Abe 2009), checked on customers drawn from
the model itself: its figures stand in the closing notes beside the maximum-likelihood models."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cdnow import abe_pareto_nbd


def _customers(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """n customers of Abe's model: (log lambda, log mu) bivariate normal, Poisson purchases while
    alive, exponential lifetimes; each observed for 26 to 39 weeks, then 39 weeks more."""
    rng = np.random.default_rng(seed)
    theta = np.array([np.log(0.2), np.log(0.03)])
    gamma = np.array([[0.8, 0.1], [0.1, 0.6]])
    rate, death = np.exp(rng.multivariate_normal(theta, gamma, size=n)).T
    age = rng.uniform(26, 39, size=n)
    lifetime = rng.exponential(1 / death)
    x, t_x, future = np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        times = np.cumsum(rng.exponential(1 / rate[i], size=200))
        times = times[times < lifetime[i]]
        before = times[times < age[i]]
        x[i] = len(before)
        t_x[i] = before[-1] if len(before) else 0.0
        future[i] = np.sum((times >= age[i]) & (times < age[i] + 39))
    return x, t_x, age, future, theta, gamma


def test_the_hierarchical_pareto_nbd_recovers_the_cohort_and_forecasts_its_purchases() -> None:
    # given 3,000 customers drawn from the model with known cohort parameters
    x, t_x, age, future, theta, gamma = _customers(3000, seed=5)
    # when sampled
    expected, theta_drawn, gamma_drawn = abe_pareto_nbd(
        x, t_x, age, 39.0, draws=1500, burn_in=700, seed=2
    )
    # then the cohort's parameters are near the true ones
    assert theta_drawn == pytest.approx(theta, abs=0.25)
    assert gamma_drawn[0, 0] == pytest.approx(gamma[0, 0], abs=0.3)
    # and the forecast of the next 39 weeks is near the purchases that followed
    assert expected.sum() == pytest.approx(future.sum(), rel=0.08)
    # and customers who bought more are expected to buy more
    assert expected[x >= 5].mean() > 3 * expected[x == 0].mean()
