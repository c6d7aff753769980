from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_graph.analytics.frames import FrameError
from crm_graph.analytics.markov import (
    STATES,
    customer_states,
    project,
    state_counts,
    transition_counts,
    transition_matrix,
)

AS_OF = pd.Timestamp("2024-05-01", tz="UTC")  # January to April are complete


def _orders(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [c for c, _ in rows],
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "at": pd.to_datetime([at for _, at in rows], utc=True, format="ISO8601"),
            "total": 10.0,
        }
    )


# With k = 1 (at risk for one silent month, churned after two):
#        Jan      Feb      Mar      Apr
# ann    active   active   at_risk  active
# bob    active   at_risk  churned  churned
# cat    -        active   active   at_risk
# dan    -        -        active   at_risk
# eve buys only at 1 May 00:00, in the month under way: not counted
FOUR_MONTHS = _orders(
    [
        ("ann", "2024-01-05"),
        ("ann", "2024-02-05"),
        ("ann", "2024-02-06"),
        ("ann", "2024-04-30T23:59"),
        ("bob", "2024-01-10"),
        ("cat", "2024-02-01"),
        ("cat", "2024-03-31"),
        ("dan", "2024-03-15"),
        ("dan", "2024-05-03"),
        ("eve", "2024-05-01"),
    ]
)


def test_states_follow_the_rule() -> None:
    states = customer_states(FOUR_MONTHS, AS_OF, at_risk_periods=1)
    assert list(states.columns) == list(pd.date_range("2024-01-01", periods=4, freq="MS", tz="UTC"))
    assert states.fillna("-").to_dict(orient="split")["data"] == [
        ["active", "active", "at_risk", "active"],
        ["active", "at_risk", "churned", "churned"],
        ["-", "active", "active", "at_risk"],
        ["-", "-", "active", "at_risk"],
    ]
    assert list(states.index) == ["ann", "bob", "cat", "dan"]


def test_a_longer_grace_keeps_customers_at_risk_longer() -> None:
    # with k = 2, bob is at risk in February and March and churned in April
    states = customer_states(FOUR_MONTHS, AS_OF, at_risk_periods=2)
    assert list(states.loc["bob"]) == ["active", "at_risk", "at_risk", "churned"]


def test_transition_counts_and_matrix_are_exact() -> None:
    # given the four months above
    # when transitions are counted (Jan->Feb, Feb->Mar, Mar->Apr; entries are not transitions)
    counts = transition_counts(FOUR_MONTHS, AS_OF, at_risk_periods=1)
    matrix = transition_matrix(FOUR_MONTHS, AS_OF, at_risk_periods=1)
    # then
    assert counts.to_numpy().tolist() == [[2, 4, 0], [1, 0, 1], [0, 0, 1]]
    assert list(matrix.index) == list(STATES) == list(matrix.columns)
    np.testing.assert_allclose(
        matrix.to_numpy(), [[2 / 6, 4 / 6, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]]
    )
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_the_lookback_counts_only_the_latest_transitions() -> None:
    # only March -> April: ann at_risk->active, bob churned->churned, cat and dan active->at_risk
    counts = transition_counts(FOUR_MONTHS, AS_OF, at_risk_periods=1, lookback_periods=1)
    assert counts.to_numpy().tolist() == [[0, 2, 0], [1, 0, 0], [0, 0, 1]]


def test_a_state_nobody_left_keeps_its_customers() -> None:
    # as of 1 April (January to March), nobody is churned before March: churned is never left
    matrix = transition_matrix(FOUR_MONTHS, pd.Timestamp("2024-04-01", tz="UTC"), at_risk_periods=1)
    assert matrix.loc["churned"].tolist() == [0.0, 0.0, 1.0]
    assert (
        transition_counts(FOUR_MONTHS, pd.Timestamp("2024-04-01", tz="UTC"), at_risk_periods=1)
        .loc["churned"]
        .sum()
        == 0
    )


def test_nothing_from_the_period_under_way_or_later_is_used() -> None:
    # given extra orders in May (as_of is 1 May) by a known and a new customer
    later = _orders([("bob", "2024-05-01T00:00"), ("zed", "2024-05-20"), ("cat", "2024-06-01")])
    with_later = pd.concat([FOUR_MONTHS, later], ignore_index=True)
    # then the states, counts and current counts are unchanged
    pd.testing.assert_frame_equal(
        transition_counts(with_later, AS_OF, at_risk_periods=1),
        transition_counts(FOUR_MONTHS, AS_OF, at_risk_periods=1),
    )
    pd.testing.assert_frame_equal(
        customer_states(with_later, AS_OF, at_risk_periods=1),
        customer_states(FOUR_MONTHS, AS_OF, at_risk_periods=1),
    )


def test_periods_of_days_end_at_as_of() -> None:
    # weeks ending at Wednesday 1 May: [24 Apr, 1 May), [17 Apr, 24 Apr), [10 Apr, 17 Apr)
    orders = _orders(
        [
            ("ann", "2024-04-10"),
            ("ann", "2024-04-23T23:59"),
            ("ann", "2024-05-01"),
            ("bob", "2024-04-16"),
            ("bob", "2024-04-30"),
        ]
    )
    states = customer_states(orders, AS_OF, period=7, at_risk_periods=1)
    assert list(states.columns) == [
        pd.Timestamp(d, tz="UTC") for d in ("2024-04-10", "2024-04-17", "2024-04-24")
    ]
    assert states.to_dict(orient="list") == {
        pd.Timestamp("2024-04-10", tz="UTC"): ["active", "active"],
        pd.Timestamp("2024-04-17", tz="UTC"): ["active", "at_risk"],
        pd.Timestamp("2024-04-24", tz="UTC"): ["at_risk", "active"],
    }


def test_state_counts_are_the_last_complete_period() -> None:
    counts = state_counts(FOUR_MONTHS, AS_OF, at_risk_periods=1)
    assert counts.to_dict() == {"active": 1, "at_risk": 2, "churned": 1}


def test_projection_multiplies_by_the_matrix_and_keeps_the_customers() -> None:
    matrix = pd.DataFrame(
        [[0.5, 0.5, 0.0], [0.25, 0.0, 0.75], [0.1, 0.0, 0.9]],
        index=list(STATES),
        columns=list(STATES),
    )
    outlook = project(matrix, {"active": 100.0, "churned": 20.0}, periods=2)
    assert list(outlook.index) == [0, 1, 2]
    assert outlook.loc[0].tolist() == [100.0, 0.0, 20.0]
    np.testing.assert_allclose(outlook.loc[1], [52.0, 50.0, 18.0])
    np.testing.assert_allclose(outlook.loc[2], [26.0 + 12.5 + 1.8, 26.0, 37.5 + 16.2])
    np.testing.assert_allclose(outlook.sum(axis=1), 120.0)


def test_projection_refuses_what_is_not_a_transition_matrix() -> None:
    bad = pd.DataFrame([[0.5, 0.4], [0.0, 1.0]], index=["a", "b"], columns=["a", "b"])
    with pytest.raises(ValueError, match="sum"):
        project(bad, {"a": 1.0}, 1)
    good = pd.DataFrame([[1.0, 0.0], [0.0, 1.0]], index=["a", "b"], columns=["a", "b"])
    with pytest.raises(ValueError, match="lacks: c"):
        project(good, {"c": 1.0}, 1)


def test_a_missing_column_is_named_and_k_must_be_positive() -> None:
    with pytest.raises(FrameError, match="orders lacks column\\(s\\) at"):
        transition_matrix(FOUR_MONTHS.drop(columns=["at"]), AS_OF)
    with pytest.raises(ValueError, match="at_risk_periods"):
        transition_matrix(FOUR_MONTHS, AS_OF, at_risk_periods=0)


def test_no_complete_period_gives_an_identity_matrix_and_no_states() -> None:
    early = pd.Timestamp("2024-01-15", tz="UTC")
    assert customer_states(FOUR_MONTHS, early).empty
    assert transition_counts(FOUR_MONTHS, early).to_numpy().sum() == 0
    np.testing.assert_allclose(transition_matrix(FOUR_MONTHS, early).to_numpy(), np.eye(3))


purchase_rows = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(0, 200)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, database=None)
@given(rows=purchase_rows, k=st.integers(1, 3), lookback=st.one_of(st.none(), st.integers(0, 8)))
def test_matrices_are_stochastic_and_projections_conserve_customers(
    rows: list[tuple[str, int]], k: int, lookback: int | None
) -> None:
    start = pd.Timestamp("2023-11-01", tz="UTC")
    orders = _orders([(c, str(start + pd.Timedelta(days=d))) for c, d in rows])
    matrix = transition_matrix(
        orders, AS_OF, period=14, at_risk_periods=k, lookback_periods=lookback
    )
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert (matrix.to_numpy() >= 0).all()
    counts = state_counts(orders, AS_OF, period=14, at_risk_periods=k)
    outlook = project(matrix, counts, periods=6)
    np.testing.assert_allclose(outlook.sum(axis=1), counts.sum())
    # every counted transition starts from a customer present in the earlier period
    states = customer_states(orders, AS_OF, period=14, at_risk_periods=k, lookback_periods=lookback)
    present = states.notna().to_numpy()
    observed = (
        transition_counts(orders, AS_OF, period=14, at_risk_periods=k, lookback_periods=lookback)
        .to_numpy()
        .sum()
    )
    expected = present[:, :-1].sum() if states.shape[1] > 1 else 0
    assert observed == expected
