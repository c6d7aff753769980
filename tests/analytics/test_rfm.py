from __future__ import annotations

import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_graph.analytics.frames import FrameError
from crm_graph.analytics.rfm import RFM_COLUMNS, SEGMENT_RULES, rfm, segment_name

AS_OF = pd.Timestamp("2024-04-01", tz="UTC")


def _orders(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [c for c, _, _ in rows],
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "at": pd.to_datetime([at for _, at, _ in rows], utc=True, format="ISO8601"),
            "total": [v for _, _, v in rows],
        }
    )


# Five customers with distinct recency, frequency and mean order value, so every score 1..5
# appears once in each column.
FIVE = _orders(
    [
        ("ann", "2024-03-31", 10.0),  # 1 order, 1 day ago, mean 10
        ("bob", "2024-01-01", 50.0),  # 2 orders, last 61 days ago, mean 40
        ("bob", "2024-01-31", 30.0),
        ("cat", "2023-06-01", 100.0),  # 3 orders, last 152 days ago, mean 100
        ("cat", "2023-09-01", 100.0),
        ("cat", "2023-11-01", 100.0),
        ("dan", "2024-02-01", 20.0),  # 4 orders, last 29.5 days ago, mean 20
        ("dan", "2024-02-15", 20.0),
        ("dan", "2024-03-01", 20.0),
        ("dan", "2024-03-02T12:00", 20.0),
        ("eve", "2024-03-20", 80.0),  # 5 orders, last 10 days ago, mean 70
        ("eve", "2024-03-21", 60.0),
        ("eve", "2024-03-22", 70.0),
        ("eve", "2024-03-19", 70.0),
        ("eve", "2024-03-20", 70.0),
    ]
)


def test_measures_are_exact() -> None:
    # given five customers' orders
    # when RFM is computed as of 1 April 2024
    table = rfm(FIVE, AS_OF)
    # then recency, frequency and mean order value are exact
    assert list(table.columns) == list(RFM_COLUMNS)
    assert table.index.name == "customer_id"
    assert list(table.index) == ["ann", "bob", "cat", "dan", "eve"]
    assert table["recency_days"].to_dict() == {
        "ann": 1.0,
        "bob": 61.0,
        "cat": 152.0,
        "dan": 29.5,
        "eve": 10.0,
    }
    assert table["frequency"].to_dict() == {"ann": 1, "bob": 2, "cat": 3, "dan": 4, "eve": 5}
    assert table["monetary"].to_dict() == {
        "ann": 10.0,
        "bob": 40.0,
        "cat": 100.0,
        "dan": 20.0,
        "eve": 70.0,
    }


def test_scores_are_quintiles_with_recency_inverted() -> None:
    table = rfm(FIVE, AS_OF)
    # the most recent buyer (ann) gets r=5, the oldest (cat) r=1
    assert table["r_score"].to_dict() == {"ann": 5, "bob": 2, "cat": 1, "dan": 3, "eve": 4}
    assert table["f_score"].to_dict() == {"ann": 1, "bob": 2, "cat": 3, "dan": 4, "eve": 5}
    assert table["m_score"].to_dict() == {"ann": 1, "bob": 3, "cat": 5, "dan": 2, "eve": 4}
    assert table["rfm_score"].to_dict() == {
        "ann": "511",
        "bob": "223",
        "cat": "135",
        "dan": "342",
        "eve": "454",
    }


def test_segments_follow_the_rule_table() -> None:
    table = rfm(FIVE, AS_OF)
    assert table["rfm_segment"].to_dict() == {
        "ann": "new",  # R5 F1
        "bob": "hibernating",  # R2 F2
        "cat": "at risk",  # R1 F3
        "dan": "loyal",  # R3 F4
        "eve": "loyal",  # R4 F5
    }
    assert segment_name(5, 5) == "champions"
    assert segment_name(1, 5) == "cannot lose them"


def test_ties_share_a_score_whatever_the_row_order() -> None:
    # given four customers, two of them with identical histories
    orders = _orders(
        [
            ("a", "2024-03-01", 10.0),
            ("b", "2024-03-01", 10.0),
            ("c", "2024-03-15", 30.0),
            ("c", "2024-03-16", 30.0),
            ("d", "2024-01-01", 5.0),
        ]
    )
    # when scored in two row orders
    forward = rfm(orders, AS_OF)
    backward = rfm(orders.iloc[::-1], AS_OF)
    # then the twins share every score, and the order of rows changes nothing
    assert forward.loc["a"].equals(forward.loc["b"])
    pd.testing.assert_frame_equal(forward, backward)
    # 1 + floor(5 * customers strictly worse / 4)
    assert forward["r_score"].to_dict() == {"a": 2, "b": 2, "c": 4, "d": 1}
    assert forward["f_score"].to_dict() == {"a": 1, "b": 1, "c": 4, "d": 1}


def test_orders_after_as_of_are_ignored() -> None:
    # given FIVE plus orders after as_of, one of them by a customer who had none before
    later = _orders(
        [
            ("ann", "2024-04-02", 1000.0),
            ("zoe", "2024-05-01", 5.0),
            ("eve", "2024-04-01T00:00:01", 1.0),
        ]
    )
    # when RFM is computed as of 1 April
    table = rfm(pd.concat([FIVE, later], ignore_index=True), AS_OF)
    # then nothing changes and the customer without earlier orders is absent
    pd.testing.assert_frame_equal(table, rfm(FIVE, AS_OF))
    assert "zoe" not in table.index


def test_an_order_exactly_at_as_of_does_not_count() -> None:
    # what is known as of as_of is what happened strictly before it (as everywhere in analytics)
    orders = _orders(
        [
            ("ann", "2024-04-01", 10.0),
            ("bob", "2024-03-01", 20.0),
            ("bob", "2024-04-01", 999.0),
            ("cat", "2024-03-31T23:59:59", 30.0),
        ]
    )
    table = rfm(orders, AS_OF)
    assert list(table.index) == ["bob", "cat"]
    assert table.loc["bob", "recency_days"] == 31.0
    assert table.loc["bob", "frequency"] == 1
    assert table.loc["bob", "monetary"] == 20.0
    assert table.loc["cat", "recency_days"] == pytest.approx(1 / 86400)


def test_column_names_are_parameters_and_naive_times_are_utc() -> None:
    renamed = FIVE.rename(columns={"customer_id": "who", "at": "when", "total": "amount"})
    renamed["when"] = renamed["when"].dt.tz_localize(None)
    table = rfm(
        renamed, pd.Timestamp("2024-04-01"), customer_col="who", at_col="when", value_col="amount"
    )
    assert table.index.name == "who"
    pd.testing.assert_frame_equal(table.rename_axis("customer_id"), rfm(FIVE, AS_OF))


def test_a_missing_column_is_named() -> None:
    with pytest.raises(FrameError, match="orders lacks column\\(s\\) total"):
        rfm(FIVE.drop(columns=["total"]), AS_OF)


def test_no_orders_before_as_of_gives_an_empty_table() -> None:
    table = rfm(FIVE, pd.Timestamp("2020-01-01", tz="UTC"))
    assert table.empty
    assert list(table.columns) == list(RFM_COLUMNS)


def test_bins_must_fit_one_digit() -> None:
    with pytest.raises(ValueError, match="bins"):
        rfm(FIVE, AS_OF, bins=10)


def test_the_rule_table_gives_every_cell_exactly_one_segment() -> None:
    for r, f in itertools.product(range(1, 6), repeat=2):
        matching = [
            rule.name
            for rule in SEGMENT_RULES
            if rule.recency_levels[0] <= r <= rule.recency_levels[1]
            and rule.frequency_levels[0] <= f <= rule.frequency_levels[1]
        ]
        assert len(matching) == 1, (r, f, matching)


def test_other_bin_counts_map_onto_the_five_levels() -> None:
    # with three bins, scores 1, 2, 3 stand for levels 1, 3, 5
    assert segment_name(3, 3, bins=3) == "champions"
    assert segment_name(2, 2, bins=3) == "need attention"
    assert segment_name(1, 1, bins=3) == "hibernating"
    assert segment_name(3, 1, bins=3) == "new"


customer_ids = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"])
order_rows = st.lists(
    st.tuples(
        customer_ids,
        st.integers(min_value=0, max_value=400),  # days after 2023-03-01
        st.floats(min_value=0.0, max_value=1000.0, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None, database=None)
@given(rows=order_rows, bins=st.integers(min_value=2, max_value=9))
def test_scores_are_in_range_and_ordered_like_the_measures(
    rows: list[tuple[str, int, float]], bins: int
) -> None:
    start = pd.Timestamp("2023-03-01", tz="UTC")
    orders = _orders([(c, str(start + pd.Timedelta(days=d)), v) for c, d, v in rows])
    table = rfm(orders, AS_OF, bins=bins)
    seen = orders[orders["at"] < AS_OF]
    assert set(table.index) == set(seen["customer_id"])
    assert table["frequency"].sum() == len(seen)
    for column in ("r_score", "f_score", "m_score"):
        assert table[column].between(1, bins).all()
    # a better measure never gets a lower score, and equal measures get equal scores
    for measure, score, sign in (
        ("recency_days", "r_score", -1),
        ("frequency", "f_score", 1),
        ("monetary", "m_score", 1),
    ):
        for x, y in itertools.permutations(table.index, 2):
            if sign * table.loc[x, measure] < sign * table.loc[y, measure]:
                assert table.loc[x, score] <= table.loc[y, score]
            if table.loc[x, measure] == table.loc[y, measure]:
                assert table.loc[x, score] == table.loc[y, score]
