"""Customer features as of a date: order windows, tenure, contact aggregates and properties on a
hand-made business with known answers; category history; nothing at or after as_of counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_graph.analytics import features as features_module
from crm_graph.analytics.features import (
    category_history,
    customer_features,
    reusing_customer_features,
)
from crm_graph.analytics.frames import FrameError
from tests.analytics.synthetic_frames import SyntheticFrames, generated_frames

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def _days_before(days: float) -> pd.Timestamp:
    return AS_OF - pd.Timedelta(days=days)


# Given: Ann buys often and complains, Bob has no signup date and one order, Cid signs up after
# as_of and has done nothing yet.
CUSTOMERS = pd.DataFrame({
    "customer_id": ["ann", "bob", "cid"],
    "signup_at": pd.to_datetime([_days_before(1000), pd.NaT, AS_OF + pd.Timedelta(days=3)],
                                utc=True),
    "country": ["GB", "GB", "FR"],
    "age": [34, 51, np.nan],
    "loyalty_tier": ["gold", "bronze", "silver"],
    "name": ["Ann A", "Bob B", "Cid C"],
})  # fmt: skip

ORDERS = pd.DataFrame({
    "customer_id": ["ann", "ann", "ann", "ann", "bob", "ann", "ann"],
    "transaction_id": ["t1", "t2", "t3", "t4", "t5", "t6", "t7"],
    "at": [_days_before(10), _days_before(60), _days_before(200), _days_before(400),
           _days_before(30), AS_OF, AS_OF + pd.Timedelta(days=1)],
    "total": [100.0, 50.0, 20.0, 5.0, 8.0, 1000.0, 9999.0],
})  # fmt: skip

LINES = pd.DataFrame({
    "customer_id": ["ann", "ann", "ann", "bob", "ann"],
    "transaction_id": ["t1", "t1", "t2", "t5", "t6"],
    "at": [_days_before(10), _days_before(10), _days_before(60), _days_before(30), AS_OF],
    "product_id": ["p1", "p2", "p3", "p4", "p5"],
    "category": ["Books", "Toys", "Books", "Garden", "Baby"],
    "quantity": [1, 2, 1, 1, 1],
    "amount": [60.0, 40.0, 50.0, 8.0, 1000.0],
})  # fmt: skip

INTERACTIONS = pd.DataFrame({
    "customer_id": ["ann", "ann", "ann", "ann"],
    "interaction_id": ["i1", "i2", "i3", "i4"],
    "at": [_days_before(5), _days_before(100), _days_before(400), AS_OF],
    "type": ["ticket", "ticket", "email", "call"],
    "channel": ["web", None, "email", "phone"],
    "sentiment": [-0.5, -1.0, 0.5, 0.9],
    "satisfaction": [2.0, np.nan, np.nan, 5.0],
})  # fmt: skip


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return customer_features(CUSTOMERS, ORDERS, LINES, INTERACTIONS, AS_OF)


def test_every_customer_has_a_row_in_the_customers_order(features: pd.DataFrame) -> None:
    assert list(features.index) == ["ann", "bob", "cid"]
    assert features.index.name == "customer_id"
    assert all(pd.api.types.is_numeric_dtype(t) for t in features.dtypes)


def test_order_windows_count_only_orders_before_as_of(features: pd.DataFrame) -> None:
    ann = features.loc["ann"]
    assert ann[["orders_30d", "orders_90d", "orders_365d", "frequency"]].tolist() == [1, 2, 3, 4]
    assert ann[["spend_30d", "spend_90d", "spend_365d", "spend_total"]].tolist() == [
        100.0, 150.0, 170.0, 175.0]  # fmt: skip
    assert ann["recency_days"] == pytest.approx(10.0)
    assert ann["monetary"] == pytest.approx(175.0 / 4)
    assert ann["distinct_categories"] == 2  # the Baby line at as_of does not count
    assert features.loc["bob", "orders_30d"] == 1  # exactly 30 days before: inside the window


def test_customers_without_orders_have_no_recency_and_zero_counts(
    features: pd.DataFrame,
) -> None:
    cid = features.loc["cid"]
    assert np.isnan(cid["recency_days"]) and np.isnan(cid["monetary"])
    assert cid[["frequency", "r_score", "f_score", "m_score", "orders_365d"]].tolist() == [0] * 5
    assert cid[[c for c in features.columns if c.startswith("rfm_segment_")]].sum() == 0
    assert features.loc["ann", [c for c in features.columns if c.startswith("rfm_segment_")]
                        ].sum() == 1  # fmt: skip


def test_tenure_from_signup_or_first_order(features: pd.DataFrame) -> None:
    assert features.loc["ann", "tenure_days"] == pytest.approx(1000.0)
    assert features.loc["bob", "tenure_days"] == pytest.approx(30.0)  # no signup: first order
    assert np.isnan(features.loc["cid", "tenure_days"])  # signs up after as_of


def test_contact_counts_by_type_channel_and_window(features: pd.DataFrame) -> None:
    ann = features.loc["ann"]
    assert ann["interactions_total"] == 3  # the call at as_of is not counted
    assert ann[["interactions_ticket", "interactions_email", "interactions_call"]].tolist() == [
        2, 1, 0]  # fmt: skip
    assert ann[["interactions_30d", "interactions_90d", "interactions_365d"]].tolist() == [1, 1, 2]
    assert ann["interactions_via_web"] == 1 and ann["interactions_via_email"] == 1
    assert "interactions_via_phone" not in features.columns  # only seen at as_of
    for kind in ("call", "email", "chat", "meeting", "ticket", "social", "web"):
        assert f"interactions_{kind}" in features.columns
    assert ann["days_since_last_interaction"] == pytest.approx(5.0)
    assert ann["ticket_share"] == pytest.approx(2 / 3)


def test_sentiment_and_satisfaction_means_keep_none_apart_from_neutral(
    features: pd.DataFrame,
) -> None:
    ann = features.loc["ann"]
    assert ann["sentiment_mean_ticket"] == pytest.approx(-0.75)
    assert ann["sentiment_count_ticket"] == 2
    assert ann["satisfaction_mean_ticket"] == pytest.approx(2.0)
    assert ann["satisfaction_count_ticket"] == 1
    assert np.isnan(ann["satisfaction_mean_email"]) and ann["satisfaction_count_email"] == 0
    assert ann["sentiment_mean"] == pytest.approx((-0.5 - 1.0 + 0.5) / 3)
    assert ann["sentiment_mean_90d"] == pytest.approx(-0.5)
    assert ann["sentiment_count_90d"] == 1
    bob = features.loc["bob"]
    assert np.isnan(bob["sentiment_mean"]) and bob["sentiment_count"] == 0
    assert np.isnan(bob["days_since_last_interaction"])
    assert bob["ticket_share"] == 0.0 and bob["interactions_total"] == 0


def test_properties_numbers_as_they_are_text_one_hot_bounded() -> None:
    out = customer_features(CUSTOMERS, ORDERS, LINES, INTERACTIONS, AS_OF, max_levels=1)
    assert out["age"].tolist()[:2] == [34.0, 51.0] and np.isnan(out.loc["cid", "age"])
    assert out[["country_GB", "country_other"]].to_numpy().tolist() == [[1, 0], [1, 0], [0, 1]]
    # three tiers of one customer each: the first by name is kept, the others are "other"
    assert out["loyalty_tier_bronze"].tolist() == [0, 1, 0]
    assert out["loyalty_tier_other"].tolist() == [1, 0, 1]
    assert not any(c.startswith("name") for c in out.columns)


def test_the_levels_of_a_training_encode_a_later_customer_table_the_same_way() -> None:
    # given the one-hot encoding of the customers' text properties at a training
    levels = features_module.property_levels(CUSTOMERS, max_levels=1)
    trained = customer_features(CUSTOMERS, ORDERS, LINES, INTERACTIONS, AS_OF, max_levels=1)
    assert levels["country"] == (("GB",), True)
    # when three customers from elsewhere arrive, so that GB is no longer the most frequent
    later = pd.concat([CUSTOMERS, pd.DataFrame({
        "customer_id": ["dan", "eve", "fay"], "signup_at": pd.to_datetime([AS_OF] * 3, utc=True),
        "country": ["US"] * 3, "age": [30, 40, 50], "loyalty_tier": ["gold"] * 3,
    })], ignore_index=True)  # fmt: skip
    fresh = customer_features(later, ORDERS, LINES, INTERACTIONS, AS_OF, max_levels=1)
    fixed = customer_features(later, ORDERS, LINES, INTERACTIONS, AS_OF, max_levels=1,
                              levels=levels)  # fmt: skip
    # then without the levels the columns change; with them they are the training's, and
    # the earlier customers' values are the same
    assert "country_GB" not in fresh.columns
    properties = [c for c in trained.columns if c.startswith(("country_", "loyalty_tier_"))]
    assert [c for c in fixed.columns if c.startswith(("country_", "loyalty_tier_"))] == properties
    pd.testing.assert_frame_equal(fixed.loc[trained.index, properties], trained[properties])
    assert fixed.loc["dan", ["country_GB", "country_other"]].tolist() == [0, 1]


def test_a_boolean_property_stays_a_number_when_a_later_customer_lacks_it() -> None:
    # given a yes/no property every customer had at training
    trained = CUSTOMERS.assign(vip=[True, False, True])
    levels = features_module.property_levels(trained)
    assert levels["vip"] is None and levels["age"] is None
    # when a customer without it arrives (the column is now text: True, False, None)
    later = pd.concat([trained, pd.DataFrame({
        "customer_id": ["dan"], "signup_at": pd.to_datetime([AS_OF], utc=True), "vip": [None],
    })], ignore_index=True)  # fmt: skip
    assert later["vip"].dtype == object
    fixed = customer_features(later, ORDERS, LINES, INTERACTIONS, AS_OF, levels=levels)
    # then it is still the one number column `vip`, missing for the newcomer
    assert [c for c in fixed.columns if c.startswith("vip")] == ["vip"]
    assert fixed["vip"].tolist()[:3] == [1.0, 0.0, 1.0] and np.isnan(fixed.loc["dan", "vip"])


def test_missing_columns_are_named() -> None:
    with pytest.raises(FrameError, match="total"):
        customer_features(CUSTOMERS, ORDERS.drop(columns="total"), LINES, INTERACTIONS, AS_OF)
    with pytest.raises(FrameError, match="interactions lacks column\\(s\\) type"):
        customer_features(CUSTOMERS, ORDERS, LINES, INTERACTIONS.drop(columns="type"), AS_OF)


def test_category_history_grid_of_customers_and_categories() -> None:
    history = category_history(LINES, AS_OF, 30)
    assert history.index.names == ["customer_id", "category"]
    assert list(history.index) == [(c, k) for c in ("ann", "bob")
                                   for k in ("Books", "Garden", "Toys")]  # fmt: skip
    assert history["bought"].tolist() == [1, 0, 1, 0, 1, 0]
    assert history.loc[("ann", "Books"), "spend"] == 60.0  # the 60-day-old Books line is out
    year = category_history(LINES, AS_OF, 365, customers=["ann", "cid"], categories=["Books"])
    assert year["spend"].tolist() == [110.0, 0.0]
    assert year["bought"].tolist() == [1, 0]


@pytest.fixture(scope="module")
def business(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFrames:
    return generated_frames(tmp_path_factory.mktemp("business"), 3_000, seed=11)


def test_future_events_change_no_feature(business: SyntheticFrames) -> None:
    as_of = pd.Timestamp("2024-09-01", tz="UTC")
    before = customer_features(business.customers, business.orders, business.lines,
                               business.interactions, as_of)  # fmt: skip
    # When: huge orders, lines and angry contacts are added at and after as_of
    rng = np.random.default_rng(0)
    who = rng.choice(business.customers["customer_id"].to_numpy(), 500)
    at = as_of + pd.to_timedelta(rng.integers(0, 90 * 86_400, 500), unit="s")
    orders = pd.concat([business.orders, pd.DataFrame({
        "customer_id": who, "transaction_id": [f"X{i}" for i in range(500)], "at": at,
        "total": 1e6})], ignore_index=True)  # fmt: skip
    lines = pd.concat([business.lines, pd.DataFrame({
        "customer_id": who, "transaction_id": [f"X{i}" for i in range(500)], "at": at,
        "product_id": "P00001", "category": "Yachts", "quantity": 1, "amount": 1e6})],
        ignore_index=True)  # fmt: skip
    interactions = pd.concat([business.interactions, pd.DataFrame({
        "customer_id": who, "interaction_id": [f"Y{i}" for i in range(500)], "at": at,
        "type": "complaint", "channel": "fax", "sentiment": -1.0, "satisfaction": 1.0})],
        ignore_index=True)  # fmt: skip
    after = customer_features(business.customers, orders, lines, interactions, as_of)
    # Then: not one feature moved
    pd.testing.assert_frame_equal(before, after)
    pd.testing.assert_frame_equal(category_history(business.lines, as_of, 90),
                                  category_history(lines, as_of, 90))  # fmt: skip


def test_synthetic_business_features_are_complete(business: SyntheticFrames) -> None:
    as_of = pd.Timestamp("2024-09-01", tz="UTC")
    out = customer_features(business.customers, business.orders, business.lines,
                            business.interactions, as_of)  # fmt: skip
    assert len(out) == len(business.customers)
    assert out.columns.is_unique
    # tickets are where unhappy customers speak up
    assert out["sentiment_mean_ticket"].mean() < out["sentiment_mean_web"].mean()
    counted = out[[f"interactions_{t}" for t in ("call", "email", "chat", "meeting", "ticket",
                                                 "social", "web")]].sum(axis=1)  # fmt: skip
    assert (counted == out["interactions_total"]).all()


def test_generated_folder_maps_duplicates_to_their_original(business: SyntheticFrames) -> None:
    ids = set(business.customers["customer_id"])
    assert set(business.orders["customer_id"]) <= ids
    assert set(business.interactions["customer_id"]) <= ids
    assert set(business.ties["source"]) | set(business.ties["target"]) <= ids
    assert (business.ties["source"] != business.ties["target"]).all()
    assert business.orders["at"].dt.tz is not None


def test_reused_features_are_computed_once_per_cut_off_and_handed_out_as_copies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    computed: list[pd.Timestamp] = []
    original = features_module._customer_features

    def counting(*args: object, **kwargs: object) -> pd.DataFrame:
        computed.append(args[4])  # type: ignore[arg-type]
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(features_module, "_customer_features", counting)
    tables = (CUSTOMERS, ORDERS, LINES, INTERACTIONS)
    alone = customer_features(*tables, AS_OF)
    with reusing_customer_features():
        first = customer_features(*tables, AS_OF)
        first.loc["ann", "frequency"] = -1  # a caller changing its copy changes nobody else's
        again = customer_features(*tables, AS_OF)
        earlier = customer_features(*tables, AS_OF - pd.Timedelta(days=30))
        other_windows = customer_features(*tables, AS_OF, windows=(7,))
    after = customer_features(*tables, AS_OF)
    assert computed == [AS_OF, AS_OF, AS_OF - pd.Timedelta(days=30), AS_OF, AS_OF]
    pd.testing.assert_frame_equal(again, alone)
    pd.testing.assert_frame_equal(after, alone)
    assert not earlier.equals(alone) and "orders_7d" in other_windows.columns


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_tenure_when_no_customer_has_a_signup_date_whatever_the_unit(unit: str) -> None:
    # given customers without any signup date, read as the store's reader gives them (a column
    # of missing instants, in whichever unit pandas chose: pandas 3 picks seconds for one
    # without any value), and their orders
    customers = pd.DataFrame({
        "customer_id": ["a", "b"],
        "signup_at": pd.Series([pd.NaT, pd.NaT], dtype=f"datetime64[{unit}, UTC]"),
    })  # fmt: skip
    orders = pd.DataFrame({
        "customer_id": ["a"], "transaction_id": ["t1"], "at": [_days_before(30)], "total": [5.0],
    })  # fmt: skip
    empty = pd.DataFrame(columns=["customer_id", "at", "category", "type"])
    # when their features are made, then the tenure runs from the first order (none: unknown)
    found = customer_features(customers, orders, empty, empty, AS_OF)
    assert found.loc["a", "tenure_days"] == pytest.approx(30.0)
    assert np.isnan(found.loc["b", "tenure_days"])
