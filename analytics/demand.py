"""Social demand: who will buy which product category next, given what they and their friends
bought.

The unit is a (customer, category) pair. `demand_features` describes each pair as of a date:

- **own history** (`OWN_COLUMNS`): whether the customer bought the category in the last 30, 90
  and 365 days (`analytics.features.category_history`), what they spent on it in the year, how
  many of their lines ever were in it and which share of all their lines that is, the days since
  they last bought it, and how popular the category was across the population lately;
- **the customer in general** (`GENERAL_COLUMNS`, from `analytics.features.customer_features`):
  recency, frequency, spend, recent orders and contacts, tenure;
- **the social neighbourhood** (`NETWORK_FEATURES`, from `analytics.network`): the count and
  share of their neighbours who bought the category in the last 30 and 90 days (also weighted by
  tie strength), the share of their Louvain community who did, and their degree, PageRank,
  clustering and community size.

`demand_labels` says whether the customer bought the category in the `horizon_days` days from the
date on. `SocialDemandModel` (scikit-learn contract, gradient boosting) learns the labels from the
features; `use_network=False` gives the same model without the social columns.

**Temporal split.** Call the scoring date T (`as_of`) and the horizon h. The model that scores
at T is fitted on pairs described as of T - h and labelled by purchases in [T - h, T) (and, with
`training_cutoffs=k`, also on the pairs as of T - 2h ... T - kh, each labelled by its own next h
days). `evaluate` does the same one horizon back: it fits on cut-offs T - 2h ... T - (k+1)h and
measures on pairs described as of T - h, labelled by purchases in [T - h, T). Features read only
events strictly before their cut-off; nothing at or after T is read.

The population at a cut-off is the customers who bought anything in the `active_window_days`
days before it (the audience a campaign would target), times every category bought before it.

`demand_features`, `demand_labels` and `category_history` take column names as parameters;
`demand_dataset`, `evaluate` and `predict_demand` expect the names of `analytics.frames`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from crm_graph.analytics.features import category_history, customer_features
from crm_graph.analytics.frames import NotEnoughData, require, utc
from crm_graph.analytics.network import neighbour_purchases, network_features

__all__ = [
    "GENERAL_COLUMNS", "NETWORK_FEATURES", "OWN_COLUMNS", "DemandEvaluation",
    "SocialDemandModel", "demand_dataset", "demand_features", "demand_labels", "evaluate",
    "evaluate_and_predict", "predict_demand",
]  # fmt: skip

OWN_COLUMNS = ("category", "cat_bought_30d", "cat_bought_90d", "cat_bought_365d",
               "cat_spend_365d", "cat_lines", "cat_line_share", "cat_days_since",
               "category_popularity_30d")  # fmt: skip
GENERAL_COLUMNS = ("recency_days", "frequency", "monetary", "spend_total", "orders_30d",
                   "orders_90d", "orders_365d", "spend_365d", "distinct_categories",
                   "tenure_days", "interactions_90d")  # fmt: skip
NETWORK_FEATURES = ("nbr_count_30d", "nbr_share_30d", "nbr_weighted_share_30d", "nbr_count_90d",
                    "nbr_share_90d", "nbr_weighted_share_90d", "nbr_exposure",
                    "community_share_90d", "degree",
                    "weighted_degree", "pagerank", "clustering", "community_size")  # fmt: skip
"""The columns `SocialDemandModel(use_network=False)` leaves out."""

NAIVE_SOCIAL_SCORE = "nbr_share_90d"
"""The naive social baseline: the share of neighbours who bought the category, as the score."""

_DAY = pd.Timedelta(days=1)

_PREDICT_ROWS = 200_000
"""Pairs prepared and predicted at a time."""

MAX_PAIRS = 400_000
"""Pairs built at each back-test cut-off (held out, or learnt from) at most: whole customers,
drawn at random. The model learns from at most `SocialDemandModel.max_samples` pairs anyway,
and an AUC on 400k pairs is within about 0.001; the pairs scored at `as_of` are never capped.
At 100k customers: 400k pairs instead of 961k per back-test cut-off."""


def demand_features(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    ties: pd.DataFrame,
    as_of: pd.Timestamp | str,
    *,
    categories: Sequence[str] | None = None,
    active_window_days: int = 365,
    max_customers: int | None = None,
    seed: int = 0,
    customer_col: str = "customer_id",
    at_col: str = "at",
    category_col: str = "category",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """One row per (customer, category) of the population at `as_of` (see the module
    docstring), indexed by (`customer_col`, `category_col`), with `OWN_COLUMNS`,
    `GENERAL_COLUMNS` and `NETWORK_FEATURES`. `category` is a pandas categorical column.

    `max_customers` caps the population: above it, that many of its customers drawn at random
    (`seed`), in population order. The social features still read every customer's purchases;
    `category_popularity_30d` is then measured on the sample."""
    require(customers, (customer_col,), "customers")
    require(orders, (customer_col, at_col), "orders")
    require(lines, (customer_col, at_col, category_col, amount_col), "lines")
    as_of = utc(as_of)
    line_at = pd.to_datetime(lines[at_col], utc=True)
    past = lines[line_at.lt(as_of)]
    if categories is None:
        categories = sorted(past[category_col].dropna().unique().tolist())
    categories = list(categories)
    everyone = pd.Index(customers[customer_col].to_numpy(), name=customer_col)
    population = _population(orders, everyone, as_of, active_window_days, customer_col, at_col)
    if max_customers is not None and len(population) > max_customers:
        keep = np.random.default_rng(seed).choice(len(population), max_customers, replace=False)
        population = population[np.sort(keep)]
    grid = pd.MultiIndex.from_product([population, pd.Index(categories)],
                                      names=[customer_col, category_col])  # fmt: skip
    columns = {"category": pd.Categorical(grid.get_level_values(1), categories=categories)}
    history = {
        "customers": population,
        "categories": categories,
        "customer_col": customer_col,
        "at_col": at_col,
        "category_col": category_col,
        "amount_col": amount_col,
    }
    for days in (30, 90, 365):
        window = category_history(lines, as_of, days, **history)
        columns[f"cat_bought_{days}d"] = window["bought"].to_numpy()
    columns["cat_spend_365d"] = window["spend"].to_numpy()
    pairs = past.groupby([customer_col, category_col])
    own_lines = pairs.size().reindex(grid, fill_value=0).astype("int64")
    all_lines = past.groupby(customer_col).size().reindex(population, fill_value=0)
    columns["cat_lines"] = own_lines.to_numpy()
    columns["cat_line_share"] = own_lines.to_numpy() / np.maximum(
        np.repeat(all_lines.to_numpy(), len(categories)), 1
    )
    last = pd.to_datetime(pairs[at_col].max(), utc=True).reindex(grid)
    columns["cat_days_since"] = ((as_of - last) / _DAY).astype(float).to_numpy()
    # the pairs run customer by customer, categories in order: a customers x categories grid
    bought_30d = np.asarray(columns["cat_bought_30d"], dtype=float)
    bought_30d = bought_30d.reshape(len(population), len(categories))
    popularity = bought_30d.mean(axis=0) if len(population) else np.zeros(len(categories))
    columns["category_popularity_30d"] = np.tile(popularity, len(population))

    general = customer_features(customers, orders, lines, interactions, as_of,
                                customer_col=customer_col, at_col=at_col,
                                category_col=category_col)  # fmt: skip
    general = general.loc[population, list(GENERAL_COLUMNS)]
    for name in GENERAL_COLUMNS:
        columns[name] = np.repeat(general[name].to_numpy(), len(categories))

    social: dict[str, Any] = {"categories": categories, "customer_col": customer_col,
                              "at_col": at_col, "category_col": category_col}  # fmt: skip
    for days, weeks in ((30, 0), (90, 8)):
        nbr = neighbour_purchases(ties, everyone, lines, as_of, days, exposure_weeks=weeks,
                                  **social).loc[population]  # fmt: skip
        for name in ("nbr_count", "nbr_share", "nbr_weighted_share"):
            columns[f"{name}_{days}d"] = nbr[name].to_numpy()
    columns["nbr_exposure"] = nbr["nbr_exposure"].to_numpy()
    network = network_features(ties, everyone, lines, as_of, seed=seed, categories=(),
                               customer_col=customer_col, at_col=at_col,
                               category_col=category_col, amount_col=amount_col)  # fmt: skip
    columns["community_share_90d"] = (
        _community_share(
            network["community"], past, as_of, categories, customer_col, at_col, category_col
        )
        .loc[population]
        .to_numpy()
        .ravel()
    )
    network = network.loc[population]
    for name in ("degree", "weighted_degree", "pagerank", "clustering", "community_size"):
        columns[name] = np.repeat(network[name].to_numpy(), len(categories))
    return _table(columns, grid)


def _table(columns: dict[str, Any], index: pd.MultiIndex) -> pd.DataFrame:
    """The pairs' table from its columns: `category` first, then the others as floats in one
    block. Each column is copied into the block and let go at once: `pd.DataFrame(columns)`
    held every number twice while it built the table (250 MB at 100k customers)."""
    category = columns.pop("category")
    names = list(columns)
    block = np.empty((len(names), len(index)))
    for j, name in enumerate(names):
        block[j] = columns.pop(name)
    table = pd.DataFrame(block.T, index=index, columns=names, copy=False)
    table.insert(0, "category", category)
    return table


def demand_labels(
    lines: pd.DataFrame,
    pairs: pd.MultiIndex,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    *,
    customer_col: str = "customer_id",
    at_col: str = "at",
    category_col: str = "category",
) -> pd.Series:
    """1 for each (customer, category) of `pairs` bought in [as_of, as_of + horizon_days), else
    0: a Series named `bought_next` on `pairs`."""
    require(lines, (customer_col, at_col, category_col), "lines")
    as_of = utc(as_of)
    at = pd.to_datetime(lines[at_col], utc=True)
    later = lines[at.ge(as_of) & at.lt(as_of + horizon_days * _DAY)]
    bought = pd.MultiIndex.from_frame(later[[customer_col, category_col]].drop_duplicates())
    return pd.Series(pairs.isin(bought).astype("int64"), index=pairs, name="bought_next")


def demand_dataset(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    ties: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    *,
    categories: Sequence[str] | None = None,
    active_window_days: int = 365,
    max_customers: int | None = None,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """Pairs described as of `as_of` and labelled by purchases in [as_of, as_of + horizon)."""
    X = demand_features(customers, orders, lines, interactions, ties, as_of,
                        categories=categories, active_window_days=active_window_days,
                        max_customers=max_customers, seed=seed)  # fmt: skip
    return X, demand_labels(lines, X.index, as_of, horizon_days)


class SocialDemandModel(ClassifierMixin, BaseEstimator):
    """Chance that a customer buys a category in the horizon, from a `demand_features` table.

    Histogram gradient boosting (missing values, such as "never bought it", are handled by the
    trees; `category` is a categorical feature). With `use_network=False` the
    `NETWORK_FEATURES` columns are dropped: the baseline that shows what the network adds.
    `n_threads` caps native threads as in `analytics.churn.ChurnModel` (default 1).

    `max_samples` caps the pairs learnt from: above it, `fit` draws that many at random
    (`random_state`). At 100k customers (940k training pairs, held out: 961k pairs one horizon
    later) the held-out AUC was 0.8260 with 300 steps of 0.05 on every pair (fit 108 s),
    0.8256 with the default 100 steps of 0.1 (29 s) and 0.8237 with that on 300k pairs (6 s).
    On 400k held-out pairs (`MAX_PAIRS`), 300k pairs learnt from gave 0.8244 (0.8165 without
    network) and the default 150k 0.8233 (0.8156), for half the fitting time.

    Fitted attributes: `classes_`, `feature_names_in_`, `n_features_in_`, `features_used_`,
    `categories_` (the categories seen in training), `model_`.
    """

    def __init__(
        self,
        *,
        use_network: bool = True,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 50,
        l2_regularization: float = 1.0,
        max_samples: int | None = 150_000,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.use_network = use_network
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_threads = n_threads

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> SocialDemandModel:
        """Learn from pairs `X` (a `demand_features` table) and their 0/1 labels `y`."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a pandas DataFrame from demand_features")
        target = np.asarray(y).astype("int64")
        if len(target) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(target)}")
        self.classes_ = np.unique(target)
        if len(self.classes_) != 2:
            raise NotEnoughData("demand labels need both classes, bought (1) and not (0)")
        if self.max_samples is not None and self.max_samples < 2:
            raise ValueError(f"max_samples must be at least 2 or None, got {self.max_samples}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        skip = set() if self.use_network else set(NETWORK_FEATURES)
        self.features_used_ = np.asarray([c for c in X.columns if c not in skip], dtype=object)
        self.categories_ = (list(X["category"].cat.categories)
                            if "category" in X.columns else [])  # fmt: skip
        model = HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization, categorical_features="from_dtype",
            random_state=self.random_state,
        )  # fmt: skip
        if self.max_samples is not None and len(X) > self.max_samples:
            rng = np.random.default_rng(self.random_state)
            keep = np.sort(rng.choice(len(X), self.max_samples, replace=False))
            X, target = X.iloc[keep], target[keep]
        with threadpool_limits(self.n_threads):
            self.model_ = model.fit(self._prepared(X), target)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) probabilities of not buying and of buying, one row per pair of `X`."""
        check_is_fitted(self, "model_")
        if len(X) == 0:
            return np.empty((0, 2))
        # in slices: the prepared copy of a million pairs alone took about 300 MB
        with threadpool_limits(self.n_threads):
            return np.concatenate([
                self.model_.predict_proba(self._prepared(X.iloc[start : start + _PREDICT_ROWS]))
                for start in range(0, len(X), _PREDICT_ROWS)
            ])  # fmt: skip

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where buying is more likely than not."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("int64")

    def _prepared(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = X.reindex(columns=list(self.features_used_))
        if "category" in frame.columns:
            frame["category"] = pd.Categorical(frame["category"].astype("object"),
                                               categories=self.categories_)  # fmt: skip
        numeric = [c for c in frame.columns if c != "category"]
        frame[numeric] = frame[numeric].astype(float)
        return frame


@dataclass(frozen=True)
class DemandEvaluation:
    """Held-out AUCs of the social demand model and its two baselines, and the lifts.

    `lift_over_without_network` and `lift_over_naive_social` are AUC differences (points of
    AUC); `top_decile_lift` is the buying rate among the model's top 10% of pairs over the base
    rate.
    """

    auc: float
    auc_without_network: float
    auc_naive_social: float
    lift_over_without_network: float
    lift_over_naive_social: float
    top_decile_lift: float
    base_rate: float
    n_train: int
    n_test: int
    train_as_of: tuple[pd.Timestamp, ...]
    test_as_of: pd.Timestamp


_Tables = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]
"""customers, orders, lines, interactions and ties."""


class _Datasets:
    """`demand_dataset` of one business per (cut-off, categories), each built once."""

    def __init__(self, tables: _Tables, horizon_days: int,
                 active_window_days: int, seed: int, max_pairs: int | None) -> None:  # fmt: skip
        self.tables = tables
        self.horizon_days = horizon_days
        self.options: dict[str, Any] = {"active_window_days": active_window_days, "seed": seed}
        self.max_pairs = max_pairs
        self._built: dict[tuple[pd.Timestamp, tuple[str, ...]], tuple[pd.DataFrame, pd.Series]]
        self._built = {}

    def at(self, cutoff: pd.Timestamp, categories: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
        """The pairs at a back-test cut-off: at most `max_pairs` (whole customers)."""
        key = (cutoff, tuple(categories))
        if key not in self._built:
            most = (None if self.max_pairs is None
                    else max(1, self.max_pairs // max(1, len(categories))))  # fmt: skip
            self._built[key] = demand_dataset(*self.tables, cutoff, self.horizon_days,
                                              categories=categories, max_customers=most,
                                              **self.options)  # fmt: skip
        return self._built[key]

    def clear(self) -> None:
        """Let go of the tables built so far."""
        self._built.clear()

    def training(self, cutoffs: Sequence[pd.Timestamp], categories: Sequence[str]
                 ) -> tuple[pd.DataFrame, pd.Series]:  # fmt: skip
        parts = [self.at(cutoff, categories) for cutoff in cutoffs]
        return pd.concat([X for X, _ in parts]), pd.concat([y for _, y in parts])


def evaluate(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    ties: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    *,
    training_cutoffs: int = 1,
    active_window_days: int = 365,
    max_pairs: int | None = MAX_PAIRS,
    seed: int = 0,
    model: SocialDemandModel | None = None,
) -> DemandEvaluation:
    """Back-test one horizon before `as_of` (see the module docstring): the model, the same
    model without network features, and the neighbours' share as the score, on the same
    held-out pairs."""
    datasets = _Datasets((customers, orders, lines, interactions, ties), horizon_days,
                         active_window_days, seed, max_pairs)  # fmt: skip
    return _evaluate(datasets, utc(as_of), training_cutoffs, model or SocialDemandModel(
        random_state=seed))  # fmt: skip


def predict_demand(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    ties: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    *,
    training_cutoffs: int = 1,
    active_window_days: int = 365,
    max_pairs: int | None = MAX_PAIRS,
    seed: int = 0,
    model: SocialDemandModel | None = None,
) -> pd.Series:
    """Chance that each (customer, category) of the population at `as_of` is bought in
    [as_of, as_of + horizon_days): a Series named `demand` indexed like `demand_features`.

    The model is fitted on the cut-offs as_of - h ... as_of - k·h (see the module docstring);
    a `model` given is fitted in place, so the caller can keep it for scoring later."""
    datasets = _Datasets((customers, orders, lines, interactions, ties), horizon_days,
                         active_window_days, seed, max_pairs)  # fmt: skip
    fitted = model if model is not None else SocialDemandModel(random_state=seed)
    return _predict(datasets, utc(as_of), training_cutoffs, fitted)


def evaluate_and_predict(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    ties: pd.DataFrame,
    as_of: pd.Timestamp | str,
    horizon_days: int,
    *,
    training_cutoffs: int = 1,
    active_window_days: int = 365,
    max_pairs: int | None = MAX_PAIRS,
    seed: int = 0,
    model: SocialDemandModel | None = None,
    evaluate_at: pd.Timestamp | str | None = None,
) -> tuple[DemandEvaluation, pd.Series]:
    """`evaluate` and `predict_demand` (fitting `model` in place) in one go: the pairs of a
    cut-off both need (as_of - h, held out by one, learnt from by the other) are built once.

    `evaluate_at` (default `as_of`): the date whose back-test is the evaluation; `as_of + h`
    when the lines hold the real future (learnt from the pairs at as_of - h, as the predicting
    model, measured on the pairs at `as_of` and what was bought in [as_of, as_of + h))."""
    datasets = _Datasets((customers, orders, lines, interactions, ties), horizon_days,
                         active_window_days, seed, max_pairs)  # fmt: skip
    as_of = utc(as_of)
    fitted = model if model is not None else SocialDemandModel(random_state=seed)
    at = as_of if evaluate_at is None else utc(evaluate_at)
    evaluation = _evaluate(datasets, at, training_cutoffs, fitted)
    return evaluation, _predict(datasets, as_of, training_cutoffs, fitted)


def _evaluate(datasets: _Datasets, as_of: pd.Timestamp, training_cutoffs: int,
              model: SocialDemandModel) -> DemandEvaluation:  # fmt: skip
    step = datasets.horizon_days * _DAY
    test_at = as_of - step
    train_at = tuple(as_of - (k + 2) * step for k in range(training_cutoffs))
    lines = datasets.tables[2]
    past = lines[pd.to_datetime(lines["at"], utc=True).lt(min(train_at))]
    categories = sorted(past["category"].dropna().unique().tolist())
    if not categories:
        raise NotEnoughData(
            f"no product category was bought before {min(train_at).date()}, the back-test's "
            f"first cut-off ({training_cutoffs + 1} horizons of {datasets.horizon_days} days "
            f"before as_of)"
        )
    X_train, y_train = datasets.training(train_at, categories)
    X_test, y_test = datasets.at(test_at, categories)
    for pairs, labels, at in ((X_train, y_train, min(train_at)), (X_test, y_test, test_at)):
        if labels.nunique() < 2:
            raise NotEnoughData(
                f"of the {len(pairs):,} customer-category pairs at {at.date()}, "
                f"{'all' if len(labels) and labels.all() else 'none'} bought in the "
                f"{datasets.horizon_days} days after it: demand needs both"
            )
    with_network = clone(model).set_params(use_network=True).fit(X_train, y_train)
    score = with_network.predict_proba(X_test)[:, 1]
    alone = clone(model).set_params(use_network=False)
    score_alone = alone.fit(X_train, y_train).predict_proba(X_test)[:, 1]
    truth = y_test.to_numpy()
    auc = float(roc_auc_score(truth, score))
    auc_alone = float(roc_auc_score(truth, score_alone))
    auc_naive = float(roc_auc_score(truth, X_test[NAIVE_SOCIAL_SCORE].to_numpy()))
    top = np.argsort(-score, kind="stable")[: max(1, len(score) // 10)]
    return DemandEvaluation(
        auc=auc, auc_without_network=auc_alone, auc_naive_social=auc_naive,
        lift_over_without_network=auc - auc_alone, lift_over_naive_social=auc - auc_naive,
        top_decile_lift=float(truth[top].mean() / truth.mean()), base_rate=float(truth.mean()),
        n_train=len(X_train), n_test=len(X_test), train_as_of=train_at, test_as_of=test_at,
    )  # fmt: skip


def _predict(datasets: _Datasets, as_of: pd.Timestamp, training_cutoffs: int,
             model: SocialDemandModel) -> pd.Series:  # fmt: skip
    step = datasets.horizon_days * _DAY
    train_at = [as_of - (k + 1) * step for k in range(training_cutoffs)]
    lines = datasets.tables[2]
    past = lines[pd.to_datetime(lines["at"], utc=True).lt(as_of)]
    categories = sorted(past["category"].dropna().unique().tolist())
    model.fit(*datasets.training(train_at, categories))
    datasets.clear()  # the back-test tables go before the pairs of every customer come
    X_now = demand_features(*datasets.tables, as_of, categories=categories, **datasets.options)
    return pd.Series(model.predict_proba(X_now)[:, 1], index=X_now.index, name="demand")


def _population(
    orders: pd.DataFrame, everyone: pd.Index, as_of: pd.Timestamp, window_days: int,
    customer_col: str, at_col: str,
) -> pd.Index:  # fmt: skip
    at = pd.to_datetime(orders[at_col], utc=True)
    recent = orders[at.ge(as_of - window_days * _DAY) & at.lt(as_of)]
    return everyone[everyone.isin(recent[customer_col])]


def _community_share(
    community: pd.Series, past: pd.DataFrame, as_of: pd.Timestamp, categories: Sequence[str],
    customer_col: str, at_col: str, category_col: str, window_days: int = 90,
) -> pd.DataFrame:  # fmt: skip
    """customers x categories: the share of the rest of their community who bought the
    category in the window (0 in a community of one)."""
    recent = past[pd.to_datetime(past[at_col], utc=True).ge(as_of - window_days * _DAY)]
    # by positions: customers x categories as 0/1, communities as codes (the same figures
    # built from (customer, category) labels held about 330 MB at 100k customers)
    who = community.index.get_indexer(recent[customer_col].to_numpy(dtype=object))
    what = pd.Index(list(categories)).get_indexer(recent[category_col].to_numpy(dtype=object))
    group, groups = pd.factorize(community.to_numpy())
    known = group >= 0  # a customer without a community shares nothing
    found = (who >= 0) & (what >= 0)
    found[found] = known[who[found]]
    own = np.zeros((len(community), len(categories)))
    own[who[found], what[found]] = 1.0
    per_group = np.zeros((len(groups), len(categories)))
    for j in range(len(categories)):
        per_group[:, j] = np.bincount(group[known], weights=own[known, j], minlength=len(groups))
    size = np.bincount(group[known], minlength=len(groups)).astype(float)
    counts = np.zeros_like(own)
    counts[known] = per_group[group[known]]
    members = np.zeros(len(community))
    members[known] = size[group[known]]
    members = members[:, None]
    shares = np.divide(counts - own, members - 1, out=np.zeros_like(counts), where=members > 1)
    return pd.DataFrame(shares, index=community.index, columns=list(categories))
