"""Social demand: pair features and labels on hand-made tables, the model contract, and on
synthetic businesses the model against its two baselines, with and without word of mouth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import crm_graph.analytics.demand as demand_module
from crm_graph.analytics.demand import (
    NETWORK_FEATURES,
    DemandEvaluation,
    SocialDemandModel,
    demand_features,
    demand_labels,
    evaluate,
    evaluate_and_predict,
    predict_demand,
)
from tests.analytics.synthetic_frames import SyntheticFrames, generated_frames

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def _at(days: float) -> pd.Timestamp:
    return AS_OF + pd.Timedelta(days=days)


# Given: two pairs of friends (ann-bob, cat-dan) and eve, who has not bought for two years.
CUSTOMERS = pd.DataFrame({"customer_id": ["ann", "bob", "cat", "dan", "eve"],
                          "signup_at": pd.to_datetime(["2020-01-01"] * 5, utc=True),
                          "country": "GB"})  # fmt: skip
TIES = pd.DataFrame({"source": ["ann", "cat"], "target": ["bob", "dan"], "type": "KNOWS",
                     "weight": 1.0})  # fmt: skip
_LINE_ROWS = [
    # customer, days from as_of, category, amount
    ("ann", -200, "Books", 10.0), ("ann", -20, "Books", 12.0), ("ann", -20, "Toys", 30.0),
    ("bob", -3, "Books", 15.0), ("cat", -50, "Garden", 40.0), ("dan", -100, "Toys", 9.0),
    ("eve", -800, "Books", 5.0),
    ("bob", 0, "Garden", 99.0), ("ann", 10, "Garden", 20.0), ("cat", 40, "Books", 20.0),
]  # fmt: skip
LINES = pd.DataFrame({
    "customer_id": [r[0] for r in _LINE_ROWS],
    "transaction_id": [f"T{i}" for i in range(len(_LINE_ROWS))],
    "at": [_at(r[1]) for r in _LINE_ROWS], "product_id": "P1",
    "category": [r[2] for r in _LINE_ROWS], "quantity": 1, "amount": [r[3] for r in _LINE_ROWS],
})  # fmt: skip
ORDERS = LINES.groupby("transaction_id", as_index=False).agg(
    customer_id=("customer_id", "first"), at=("at", "min"), total=("amount", "sum")
)
INTERACTIONS = pd.DataFrame({"customer_id": [], "interaction_id": [], "at": [], "type": [],
                             "channel": [], "sentiment": [], "satisfaction": []})  # fmt: skip


@pytest.fixture(scope="module")
def pairs() -> pd.DataFrame:
    return demand_features(CUSTOMERS, ORDERS, LINES, INTERACTIONS, TIES, AS_OF)


def test_pairs_are_active_customers_times_categories_bought_before(pairs: pd.DataFrame) -> None:
    assert pairs.index.names == ["customer_id", "category"]
    # eve bought nothing in the last year; Garden was first bought 50 days ago by cat
    assert list(pairs.index) == [(c, k) for c in ("ann", "bob", "cat", "dan")
                                 for k in ("Books", "Garden", "Toys")]  # fmt: skip
    assert isinstance(pairs["category"].dtype, pd.CategoricalDtype)


def test_own_history_columns(pairs: pd.DataFrame) -> None:
    ann_books = pairs.loc[("ann", "Books")]
    assert ann_books[["cat_bought_30d", "cat_bought_90d", "cat_bought_365d"]].tolist() == [1, 1, 1]
    assert ann_books["cat_spend_365d"] == pytest.approx(22.0)
    assert ann_books["cat_lines"] == 2
    assert ann_books["cat_line_share"] == pytest.approx(2 / 3)
    assert ann_books["cat_days_since"] == pytest.approx(20.0)
    assert np.isnan(pairs.loc[("ann", "Garden"), "cat_days_since"])  # never bought
    dan_toys = pairs.loc[("dan", "Toys")]
    assert dan_toys[["cat_bought_30d", "cat_bought_90d", "cat_bought_365d"]].tolist() == [0, 0, 1]
    # 2 of the 4 active customers bought Books in the last 30 days (ann, bob)
    assert pairs.loc[("cat", "Books"), "category_popularity_30d"] == pytest.approx(0.5)


def test_social_columns(pairs: pd.DataFrame) -> None:
    # ann's only friend bob bought Books 3 days ago; bob's friend ann bought Toys 20 days ago
    assert pairs.loc[("ann", "Books"), "nbr_share_30d"] == 1.0
    assert pairs.loc[("ann", "Books"), "nbr_exposure"] == pytest.approx(1.0)  # this week
    assert pairs.loc[("bob", "Toys"), "nbr_share_30d"] == 1.0
    assert pairs.loc[("bob", "Toys"), "nbr_exposure"] == pytest.approx(0.7**2)
    assert pairs.loc[("cat", "Toys"), "nbr_share_30d"] == 0.0  # dan's Toys: 100 days ago
    assert pairs.loc[("dan", "Garden"), "nbr_share_90d"] == 1.0
    # the two pairs are two communities: the rest of ann's community is bob
    assert pairs.loc[("ann", "Books"), "community_share_90d"] == 1.0
    assert pairs.loc[("ann", "Garden"), "community_share_90d"] == 0.0
    assert pairs.loc[("ann", "Books"), "degree"] == 1


def test_labels_are_purchases_in_the_horizon_from_as_of(pairs: pd.DataFrame) -> None:
    labels = demand_labels(LINES, pairs.index, AS_OF, 30)
    assert labels[labels == 1].index.tolist() == [("ann", "Garden"), ("bob", "Garden")]
    longer = demand_labels(LINES, pairs.index, AS_OF, 60)
    assert longer.sum() == 3  # cat's Books, 40 days on


def test_unfitted_model_refuses_to_predict(pairs: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        SocialDemandModel().predict_proba(pairs)


def test_model_without_network_ignores_the_social_columns(pairs: pd.DataFrame) -> None:
    y = demand_labels(LINES, pairs.index, AS_OF, 60)
    X = pd.concat([pairs] * 20)
    labels = pd.concat([y] * 20)
    plain = SocialDemandModel(use_network=False, min_samples_leaf=5, max_iter=20).fit(X, labels)
    assert not set(plain.features_used_) & set(NETWORK_FEATURES)
    assert list(plain.feature_names_in_) == list(pairs.columns)
    social = SocialDemandModel(min_samples_leaf=5, max_iter=20).fit(X, labels)
    assert set(NETWORK_FEATURES) <= set(social.features_used_)
    proba = social.predict_proba(pairs)
    assert proba.shape == (len(pairs), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_max_samples_caps_the_pairs_learnt_from(pairs: pd.DataFrame) -> None:
    y = demand_labels(LINES, pairs.index, AS_OF, 60)
    X, labels = pd.concat([pairs] * 20), pd.concat([y] * 20)
    options = {"min_samples_leaf": 2, "max_iter": 20}

    def proba(max_samples: int | None, seed: int = 0) -> np.ndarray:
        model = SocialDemandModel(max_samples=max_samples, random_state=seed, **options)
        return model.fit(X, labels).predict_proba(pairs)[:, 1]

    everything = proba(None)
    np.testing.assert_array_equal(proba(len(X)), everything)  # at the cap: every pair
    sampled = proba(len(X) // 4)
    assert not np.array_equal(sampled, everything)
    np.testing.assert_array_equal(proba(len(X) // 4), sampled)  # the same seed, the same draw
    with pytest.raises(ValueError, match="max_samples"):
        SocialDemandModel(max_samples=1).fit(X, labels)


def test_predicting_in_slices_gives_the_probabilities_of_one_pass(
    pairs: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    y = demand_labels(LINES, pairs.index, AS_OF, 60)
    model = SocialDemandModel(min_samples_leaf=2, max_iter=20).fit(
        pd.concat([pairs] * 5), pd.concat([y] * 5)
    )
    whole = model.predict_proba(pairs)
    monkeypatch.setattr(demand_module, "_PREDICT_ROWS", 3)  # slices of 3 pairs
    np.testing.assert_array_equal(model.predict_proba(pairs), whole)
    assert model.predict_proba(pairs.iloc[:0]).shape == (0, 2)


def test_predicts_every_pair_of_the_population_now(pairs: pd.DataFrame) -> None:
    demand = predict_demand(CUSTOMERS, ORDERS, LINES, INTERACTIONS, TIES, AS_OF, 30,
                            model=SocialDemandModel(min_samples_leaf=2))  # fmt: skip
    assert demand.name == "demand"
    assert demand.index.equals(pairs.index)
    assert demand.between(0, 1).all()


def test_max_customers_samples_whole_customers_of_the_population(pairs: pd.DataFrame) -> None:
    # given the population ann, bob, cat, dan (eve has not bought for two years)
    def capped(most: int, seed: int = 0) -> pd.DataFrame:
        return demand_features(CUSTOMERS, ORDERS, LINES, INTERACTIONS, TIES, AS_OF,
                               max_customers=most, seed=seed)  # fmt: skip

    # when capped at two customers, then two of them, with all their pairs, in population
    # order, and their social features as without the cap (friends outside the sample count)
    two = capped(2)
    chosen = two.index.get_level_values(0).unique()
    assert len(chosen) == 2 and set(chosen) <= {"ann", "bob", "cat", "dan"}
    assert list(chosen) == [c for c in pairs.index.get_level_values(0).unique() if c in chosen]
    social = [c for c in NETWORK_FEATURES if c != "community_size"]
    pd.testing.assert_frame_equal(two[social], pairs.loc[list(chosen), social])
    assert capped(2).index.equals(two.index)  # the same seed, the same draw
    # at or above the population's size, every customer
    assert capped(4).index.equals(pairs.index)


def test_back_tests_build_at_most_max_pairs_per_cut_off(word_of_mouth: SyntheticFrames) -> None:
    b = word_of_mouth
    uncapped = evaluate(b.customers, b.orders, b.lines, b.interactions, b.ties, SCORE_AT,
                        HORIZON, max_pairs=None)  # fmt: skip
    capped = evaluate(b.customers, b.orders, b.lines, b.interactions, b.ties, SCORE_AT,
                      HORIZON, max_pairs=uncapped.n_test // 2)  # fmt: skip
    assert capped.n_test <= uncapped.n_test // 2 and capped.n_train <= uncapped.n_test // 2
    assert capped.n_test > uncapped.n_test // 3
    assert abs(capped.auc - uncapped.auc) < 0.05


HORIZON = 30
SCORE_AT = pd.Timestamp("2025-01-01", tz="UTC")


@pytest.fixture(scope="module")
def word_of_mouth(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFrames:
    return generated_frames(tmp_path_factory.mktemp("influence"), 4_000, seed=3)


@pytest.fixture(scope="module")
def no_word_of_mouth(tmp_path_factory: pytest.TempPathFactory) -> SyntheticFrames:
    folder = tmp_path_factory.mktemp("control")
    return generated_frames(folder, 4_000, seed=3, influence_strength=0.0)


def _evaluate(b: SyntheticFrames) -> DemandEvaluation:
    return evaluate(b.customers, b.orders, b.lines, b.interactions, b.ties, SCORE_AT, HORIZON)


@pytest.fixture(scope="module")
def with_influence(word_of_mouth: SyntheticFrames) -> DemandEvaluation:
    return _evaluate(word_of_mouth)


@pytest.fixture(scope="module")
def without_influence(no_word_of_mouth: SyntheticFrames) -> DemandEvaluation:
    return _evaluate(no_word_of_mouth)


def test_social_model_beats_both_baselines_where_friends_matter(
    with_influence: DemandEvaluation,
) -> None:
    result = with_influence
    assert result.auc > result.auc_without_network
    assert result.auc > result.auc_naive_social
    assert result.lift_over_without_network == pytest.approx(
        result.auc - result.auc_without_network
    )
    assert result.top_decile_lift > 3
    assert result.test_as_of == SCORE_AT - pd.Timedelta(days=HORIZON)
    assert result.n_test > 0 and 0 < result.base_rate < 0.2


def test_without_word_of_mouth_the_network_adds_less(
    with_influence: DemandEvaluation, without_influence: DemandEvaluation
) -> None:
    assert without_influence.lift_over_without_network < with_influence.lift_over_without_network
    assert without_influence.auc_naive_social < with_influence.auc_naive_social


def test_nothing_after_as_of_changes_training_pairs_or_labels(
    word_of_mouth: SyntheticFrames,
) -> None:
    b = word_of_mouth
    who = b.customers["customer_id"].to_numpy()
    rng = np.random.default_rng(4)
    at = SCORE_AT + pd.to_timedelta(rng.integers(0, 60 * 86_400, len(who)), unit="s")
    ids = [f"X{i}" for i in range(len(who))]
    lines = pd.concat([b.lines, pd.DataFrame({
        "customer_id": who, "transaction_id": ids, "at": at, "product_id": "P00001",
        "category": rng.choice(["Books", "Garden", "Baby"], len(who)), "quantity": 1,
        "amount": 1e6})], ignore_index=True)  # fmt: skip
    orders = pd.concat(
        [
            b.orders,
            pd.DataFrame({"customer_id": who, "transaction_id": ids, "at": at, "total": 1e6}),
        ],
        ignore_index=True,
    )
    # features as of SCORE_AT (so as of any earlier cut-off too) do not move
    now = demand_features(b.customers, b.orders, b.lines, b.interactions, b.ties, SCORE_AT)
    now2 = demand_features(b.customers, orders, lines, b.interactions, b.ties, SCORE_AT)
    pd.testing.assert_frame_equal(now, now2)
    # nor do the training labels, purchases in [SCORE_AT - h, SCORE_AT)
    cut = SCORE_AT - pd.Timedelta(days=HORIZON)
    pairs = now.index
    pd.testing.assert_series_equal(demand_labels(b.lines, pairs, cut, HORIZON),
                                   demand_labels(lines, pairs, cut, HORIZON))  # fmt: skip
    assert demand_labels(lines, pairs, SCORE_AT, HORIZON).sum() > 0  # the added purchases


def test_evaluating_and_predicting_together_gives_what_each_gives_alone(
    word_of_mouth: SyntheticFrames, with_influence: DemandEvaluation
) -> None:
    b = word_of_mouth
    tables = (b.customers, b.orders, b.lines, b.interactions, b.ties)
    alone = predict_demand(*tables, SCORE_AT, HORIZON)
    model = SocialDemandModel()
    found, chances = evaluate_and_predict(*tables, SCORE_AT, HORIZON, model=model)
    assert found == with_influence
    pd.testing.assert_series_equal(chances, alone)
    assert model.predict_proba(demand_features(*tables, SCORE_AT)).shape == (len(chances), 2)
