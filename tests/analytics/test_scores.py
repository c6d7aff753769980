"""The JSON texts written back: the grouped encoders give exactly what `encode` gives."""

from __future__ import annotations

import json

import pandas as pd

from crm_graph.analytics.score_encoding import encode_demand, encode_groups, encode_recommendations
from crm_graph.analytics.train import encode_drivers
from crm_graph.graph.score_properties import encode


def test_grouped_lists_equal_one_encode_per_key_in_first_appearance_order() -> None:
    keys = ["b", "a", "b", "c", "a"]
    values = [1, {"x": 'é"q'}, [2, None], "t", 3.5]
    grouped = encode_groups(keys, [encode(v) for v in values])
    assert grouped.index.tolist() == ["b", "a", "c"]
    assert grouped.tolist() == [encode([1, [2, None]]), encode([{"x": "é\"q"}, 3.5]),
                                encode(["t"])]  # fmt: skip
    assert encode_groups([], []).empty


def test_demand_and_recommendations_encode_like_the_maps_and_lists_they_stand_for() -> None:
    index = pd.MultiIndex.from_tuples([("c1", "Books"), ("c2", "Home \"&\" Garden"),
                                       ("c1", "Tea")])  # fmt: skip
    demand = encode_demand(pd.Series([0.123456, 0.5, 1 / 3], index=index))
    assert demand["c1"] == encode({"Books": 0.1235, "Tea": 0.3333})
    assert json.loads(demand["c2"]) == {'Home "&" Garden': 0.5}
    suggested = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2"], "product_id": ["p1", "p2", "p1"], "rank": [1, 2, 1],
        "score": [0.91234567, 0.5, 0.25],
        "reasons": [["bought by 2 friends", "popular: bought by 9 customers"], [], ["naïve"]],
    })  # fmt: skip
    encoded = encode_recommendations(suggested)
    assert encoded["c1"] == encode([
        {"productId": "p1", "score": 0.912346,
         "reasons": ["bought by 2 friends", "popular: bought by 9 customers"]},
        {"productId": "p2", "score": 0.5, "reasons": []},
    ])  # fmt: skip
    assert encoded["c2"] == encode([{"productId": "p1", "score": 0.25, "reasons": ["naïve"]}])


def test_churn_drivers_encode_each_customers_named_drivers_in_order() -> None:
    frame = pd.DataFrame(
        {"churn_risk": [0.9, 0.1], "driver_1": ["recency_days", "orders_90d"],
         "push_1": [1.5, -0.25], "driver_2": ["ticket_share", None], "push_2": [0.5, None]},
        index=["c1", "c2"],
    )  # fmt: skip
    encoded = encode_drivers(frame)
    assert encoded.index.tolist() == ["c1", "c2"]
    assert encoded["c1"] == encode([{"feature": "recency_days", "contribution": 1.5},
                                    {"feature": "ticket_share", "contribution": 0.5}])  # fmt: skip
    assert encoded["c2"] == encode([{"feature": "orders_90d", "contribution": -0.25}])
