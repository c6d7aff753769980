"""The stages of `crm-graph train`: one function per model, each taking the tables, `as_of`,
the horizon and where its held-out figures come from (`StageInput`), and returning what it made
(`StageOutcome`: the customers' scores, the model card's figures, the fitted models), or raising
`NotEnoughData` with the reason, in terms of the data, when the data cannot support it.

**Where the held-out figures come from** (`Evaluation`). When the graph holds what happened
after `as_of` (its events run to the last day of `[as_of, as_of + horizon)`), every model is
trained only on what was known before `as_of` and measured on what happened in that period: the
real future. Otherwise a back-test one horizon earlier: trained on what was known before
`as_of - horizon`, measured on `[as_of - horizon, as_of)`. Either way the scores are made from
what was known before `as_of`; each model card says which evaluation its figures come from.

Which stage runs on which data (any subset of the contract):

| stage | needs |
|---|---|
| rfm, markov | orders before `as_of` (Markov: 50) |
| clv | 50 orders before `as_of` and before the evaluation's start |
| churn | 50 orders before `as_of`, or a flag the customers carry (`churn_label`) |
| segments | customers with any feature: attributes alone will do |
| network | social ties |
| demand | ties and order lines whose products have categories |
| recommendations | order lines naming products (with categories or without) |
| rules | the same, and an order holding two products |
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from crm_graph.analytics import churn, clv, demand, features, markov, network, rfm, score_encoding
from crm_graph.analytics.frames import NotEnoughData
from crm_graph.analytics.segments import SegmentationModel
from crm_graph.graph import score_properties

MIN_ORDERS = 50
CLV_PENALIZER = 0.001
"""The BG/NBD and Gamma-Gamma penalty when the plain fit does not pin its parameters down."""
_DAY = pd.Timedelta(days=1)
Fitted = TypeVar("Fitted")


@dataclass(frozen=True)
class Evaluation:
    """The period a model's held-out figures are measured on, `[start, start + horizon)`, and
    whether it is the real future after `as_of` (else a back-test one horizon before it)."""

    start: pd.Timestamp
    horizon_days: int
    future: bool
    note: str | None = None
    """Why a back-test was chosen though the graph holds events after `as_of`, if it does."""

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(days=self.horizon_days)

    @property
    def kind(self) -> str:
        return "real future" if self.future else "back-test"

    def describe(self) -> str:
        """What the figures measured on this period mean, for the report and model cards."""
        period = f"{self.start.date()} to {(self.end - _DAY).date()}"
        if self.future:
            return (f"real future: trained on what was known before {self.start.date()} "
                    f"(as_of), measured on what happened from {period}")  # fmt: skip
        return (f"back-test: trained on what was known before {self.start.date()} (one horizon "
                f"before as_of), measured on what happened from {period}")  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        found = {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "description": self.describe(),
        }
        if self.note:
            found["note"] = self.note
        return found


def choose_evaluation(
    last_event: pd.Timestamp | None, as_of: pd.Timestamp, horizon_days: int
) -> Evaluation:
    """The real future when the graph's events run to the last day of the horizon after
    `as_of`, else the back-test one horizon before it (saying why, when there are events after
    `as_of` that stop short of the horizon: measured on them, customers who had not yet come
    back would count as gone)."""
    end = as_of + pd.Timedelta(days=horizon_days)
    if last_event is not None and last_event >= end - _DAY:
        return Evaluation(as_of, horizon_days, future=True)
    note = None
    if last_event is not None and last_event >= as_of:
        note = (
            f"the graph's events after as_of stop on {last_event.date()}, before the "
            f"{horizon_days}-day horizon ends on {(end - _DAY).date()}: back-test instead"
        )
    return Evaluation(as_of - pd.Timedelta(days=horizon_days), horizon_days, False, note)


@dataclass
class StageInput:
    """What every stage reads: the tables (all events, those after `as_of` too: each model cuts
    at its own dates and reads later events only as its held-out labels), `as_of`, the horizon,
    the evaluation period and the seed."""

    customers: pd.DataFrame
    orders: pd.DataFrame
    lines: pd.DataFrame
    interactions: pd.DataFrame
    ties: pd.DataFrame | None
    as_of: pd.Timestamp
    horizon_days: int
    evaluation: Evaluation
    seed: int = 0
    churn_label: str | None = None

    @cached_property
    def known(self) -> pd.DataFrame:
        """The orders placed before `as_of`."""
        return self.orders[self.orders["at"] < self.as_of]

    @cached_property
    def product_lines(self) -> int:
        """Order lines naming a product, placed before `as_of`."""
        lines = self.lines
        return int((lines["product_id"].notna() & (lines["at"] < self.as_of)).sum())

    @cached_property
    def has_categories(self) -> bool:
        """Whether any line before `as_of` has a product with a category."""
        lines = self.lines
        return bool((lines["category"].notna() & (lines["at"] < self.as_of)).any())

    def features(self, at: pd.Timestamp | None = None) -> pd.DataFrame:
        """The customers' features as of `at` (default `as_of`)."""
        return features.customer_features(self.customers, self.orders, self.lines,
                                          self.interactions, at or self.as_of)  # fmt: skip

    def need_orders(self, model: str) -> None:
        """Raise `NotEnoughData` unless there are `MIN_ORDERS` orders before `as_of`."""
        if not len(self.orders):
            raise NotEnoughData(f"no orders in the graph: {model} is learnt from purchases")
        if len(self.known) < MIN_ORDERS:
            raise NotEnoughData(
                f"{len(self.known):,} orders before as_of ({self.as_of.date()}); {model} "
                f"needs {MIN_ORDERS}"
            )


@dataclass
class StageOutcome:
    """What a stage made: score properties (customer id -> value), the model card's figures,
    fitted models (for `crm-graph score`), the parts of it skipped (name -> reason), a line for
    the progress output, and anything a later stage or the write-back needs (`kept`)."""

    scores: dict[str, pd.Series] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    fitted: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    said: str | None = None
    kept: dict[str, Any] = field(default_factory=dict)


# --- RFM and Markov ------------------------------------------------------------------------


def rfm_stage(data: StageInput) -> StageOutcome:
    if not len(data.known):
        raise NotEnoughData(
            "no orders in the graph" if not len(data.orders)
            else f"no orders before as_of ({data.as_of.date()})"
        )  # fmt: skip
    table = rfm.rfm(data.known, data.as_of)
    return StageOutcome(
        scores={
            score_properties.RFM_RECENCY_DAYS: table["recency_days"],
            score_properties.RFM_FREQUENCY: table["frequency"],
            score_properties.RFM_MONETARY: table["monetary"],
            score_properties.RFM_SCORE: table["rfm_score"],
            score_properties.RFM_SEGMENT: table["rfm_segment"],
        },
        metrics={
            "customers": len(table),
            "segments": table["rfm_segment"].value_counts().to_dict(),
        },
    )


def markov_stage(data: StageInput) -> StageOutcome:
    data.need_orders("the Markov outlook")
    matrix = markov.transition_matrix(data.orders, data.as_of)
    start_counts = markov.state_counts(data.orders, data.as_of)
    outlook = markov.project(matrix, start_counts, 6)
    return StageOutcome(
        metrics={
            "matrix": {
                s: {t: float(matrix.loc[s, t]) for t in matrix.columns} for s in matrix.index
            },
            "projection": {
                int(i): {s: float(row[s]) for s in outlook.columns} for i, row in outlook.iterrows()
            },
        }
    )


# --- Segments ------------------------------------------------------------------------------


def segments_stage(data: StageInput) -> StageOutcome:
    """Segments of the customers' features as of `as_of`; `kept` holds their `labels`
    (customer -> segment id), `names` (segment id -> name) and `profiles`."""
    table = data.features()
    segmentation = SegmentationModel(random_state=data.seed)
    labels = segmentation.fit_predict(table)
    segment_names = segmentation.segment_names()
    # the segments map (the explore page): each customer's place in the 2-D picture
    picture = segmentation.pca_2d(table)
    return StageOutcome(
        scores={
            score_properties.SEGMENT_X: picture["pc1"],
            score_properties.SEGMENT_Y: picture["pc2"],
        },
        metrics={
            "k": int(segmentation.k_),
            "silhouette": float(segmentation.silhouette_),
            "explainedVariance": [float(v) for v in segmentation.explained_variance_ratio_],
            "sizes": {str(segment_names[k]): int(v) for k, v in labels.value_counts().items()},
        },
        fitted={"segmentation": segmentation},
        said=f"segments: k={segmentation.k_}, silhouette {segmentation.silhouette_:.3f}",
        kept={"labels": labels, "names": segment_names, "profiles": segmentation.profiles(table)},
    )


def no_segments() -> dict[str, Any]:
    """The `kept` of a skipped segmentation: writing it back removes an earlier training's
    segments, which would otherwise pass for this one's."""
    return {"labels": pd.Series(dtype="int64"), "names": pd.Series(dtype=object),
            "profiles": pd.DataFrame()}  # fmt: skip


# --- Network -------------------------------------------------------------------------------


def network_stage(data: StageInput) -> StageOutcome:
    if data.ties is None:
        raise NotEnoughData("no social ties in the graph")
    net = network.network_features(data.ties, data.customers.index, data.lines, data.as_of,
                                   seed=data.seed)  # fmt: skip
    communities = int(net["community"].nunique())
    return StageOutcome(
        scores={
            score_properties.PAGERANK: net["pagerank"],
            score_properties.COMMUNITY: net["community"],
            score_properties.DEGREE: net["degree"],
        },
        metrics={
            "communities": communities,
            "largest_community": int(net["community_size"].max()),
            "mean_degree": float(net["degree"].mean()),
        },
        said=f"network: {communities:,} communities",
    )


# --- Churn ---------------------------------------------------------------------------------


def churn_stage(data: StageInput) -> StageOutcome:
    """Churn from the customers' flag (`churn_label`), else derived from purchases: no order
    within the horizon, for the customers active in the 180 days before."""
    if data.churn_label is not None:
        return _churn_from_flag(data, data.churn_label)
    if not len(data.orders):
        raise NotEnoughData(
            "no orders in the graph: churn is learnt from purchases, or from a flag the "
            "customers carry (--churn-label PROPERTY)"
        )
    data.need_orders("churn")
    model = churn.ChurnModel(random_state=data.seed)
    evaluation, risk = churn.evaluate_and_score(
        data.customers, data.orders, data.lines, data.interactions, data.as_of,
        data.horizon_days, ties=data.ties, seed=data.seed, model=model,
        evaluate_at=data.evaluation.end,
    )  # fmt: skip
    label = f"no purchase within {data.horizon_days} days"
    return _churn_outcome(model, evaluation, risk, label, data.evaluation.describe())


def _churn_from_flag(data: StageInput, label: str) -> StageOutcome:
    """Churn learnt from a flag the customers carry (a cancelled contract, say), with or without
    orders. The flag has no date, so the held-out set is 30% of the flagged customers
    (stratified); the flag is never a feature. Gradient boosting with scikit-learn's defaults,
    one model fitted on all the training rows and calibrated on out-of-fold predictions: on
    attributes alone the risk lies in thresholds and interactions of them (a plan and many
    service calls) that a logistic model cannot draw. On mlc-churn's held-out 30%, AUC 0.929
    against 0.922 for the average of three fold models and 0.811 for the logistic one, and
    0.930 for a plain gradient-boosting model on the raw columns (see the README)."""
    from sklearn.model_selection import train_test_split

    customers = data.customers
    if label not in customers.columns:
        raise NotEnoughData(f"no customer has the property {label!r}")
    # by id: the held-out customers do not depend on the order the store returned them in
    flags = customers[label].map(_truth).dropna().astype(int).sort_index()
    if flags.nunique() < 2 or flags.value_counts().min() < 10:
        raise NotEnoughData(
            f"property {label!r} needs at least 10 customers of each value (true and false); "
            f"it has {int(flags.sum()):,} true and {int((flags == 0).sum()):,} false"
        )
    base = customers.drop(columns=[label])
    attributes = len(features.property_levels(base))
    X_all = churn.churn_features(base, data.orders, data.lines, data.interactions, data.as_of,
                                 ties=data.ties, seed=data.seed)  # fmt: skip
    X, y = X_all.loc[flags.index], flags
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=data.seed
    )
    method = "boosting"
    options: dict[str, Any] = {"ensemble": False, "boosting_params": {}}
    evaluation = churn.evaluate_model(
        churn.ChurnModel(method, random_state=data.seed, **options), X_train, y_train, X_test,
        y_test,
    )  # fmt: skip
    model = churn.ChurnModel(method, random_state=data.seed, **options).fit(X, y)
    risk = pd.concat([model.churn_risk(X_all), model.drivers(X_all, top=3)], axis=1)
    learnt = f"the {label!r} flag and {attributes} attribute{'s' * (attributes != 1)}"
    if len(data.known):
        learnt += f", with {len(data.known):,} orders"
    outcome = _churn_outcome(
        model, evaluation, risk,
        f"customer property {label!r} (held-out customers: 30%)",
        "held-out customers: 30% of those flagged, stratified (the flag has no date)",
    )  # fmt: skip
    outcome.metrics = {**(outcome.metrics or {}), "learnt_from": learnt, "method": method}
    outcome.said = (
        f"churn ({label}): AUC {evaluation.auc:.3f} on {evaluation.n_test:,} held-out "
        f"customers, learnt from {learnt}"
    )
    return outcome


def _churn_outcome(
    model: churn.ChurnModel, evaluation: churn.ChurnEvaluation, risk: pd.DataFrame, label: str,
    described: str,
) -> StageOutcome:  # fmt: skip
    return StageOutcome(
        scores={
            score_properties.CHURN_RISK: risk["churn_risk"],
            score_properties.CHURN_DRIVERS: encode_drivers(risk),
        },
        metrics={
            "auc": evaluation.auc,
            "brier": evaluation.brier,
            "base_rate": evaluation.base_rate,
            "n_train": evaluation.n_train,
            "n_test": evaluation.n_test,
            "label": label,
            "evaluation": described,
        },
        fitted={"churn": model},
        said=f"churn: AUC {evaluation.auc:.3f} on {evaluation.n_test:,} held-out customers",
    )


def _truth(value: Any) -> float | None:
    """true/false, yes/no, 1/0 (any case) as 1/0; anything else unknown."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.number) and value in (0, 1):
        return float(value)
    text = str(value).strip().lower()
    return {"true": 1.0, "yes": 1.0, "1": 1.0, "false": 0.0, "no": 0.0, "0": 0.0}.get(text)


def encode_drivers(frame: pd.DataFrame) -> pd.Series:
    """`driver_k` / `push_k` columns (from `ChurnModel.drivers`) as one JSON list per customer."""
    columns = sorted(c for c in frame.columns if c.startswith("driver_"))
    drivers = frame[columns].to_numpy(dtype=object).tolist()
    pushes = frame[[c.replace("driver_", "push_") for c in columns]].to_numpy(dtype=object)
    return pd.Series(
        [
            score_properties.encode(
                [
                    {"feature": d, "contribution": float(p)}
                    for d, p in zip(named, pushed, strict=True)
                    if isinstance(d, str)
                ]
            )
            for named, pushed in zip(drivers, pushes.tolist(), strict=True)
        ],
        index=frame.index,
        dtype=object,
    )


# --- CLV -----------------------------------------------------------------------------------


def clv_stage(data: StageInput) -> StageOutcome:
    """BG/NBD (and Gamma-Gamma for the value) fitted on the orders before `as_of`; measured by
    the purchases it forecasts for the evaluation's period against those made then."""
    data.need_orders("CLV")
    start = data.evaluation.start
    if (data.orders["at"] < start).sum() < MIN_ORDERS:
        raise NotEnoughData(
            f"fewer than {MIN_ORDERS} orders before {start.date()}, the back-test's cut-off "
            f"({data.horizon_days} days before as_of)"
        )
    back, _ = _unpenalised_if_it_fits(
        lambda penalizer: clv.backtest(data.orders, start, data.horizon_days, penalizer=penalizer)
    )
    summary = clv.summary(data.known, data.as_of)
    bgnbd, penalizer = _unpenalised_if_it_fits(
        lambda penalizer: clv.BetaGeoModel(penalizer=penalizer).fit(summary)
    )
    purchases = bgnbd.predict_purchases(summary, data.horizon_days)
    outcome = StageOutcome(
        scores={
            score_properties.CLV_PURCHASES: purchases,
            score_properties.CLV_ALIVE: bgnbd.probability_alive(summary),
            score_properties.CLV_HORIZON_DAYS: pd.Series(
                np.where(purchases.notna(), data.horizon_days, np.nan), index=purchases.index
            ),
        },
        metrics={
            "predicted_purchases": float(back["predicted_purchases"]),
            "actual_purchases": float(back["actual_purchases"]),
            "relative_error": float(back["relative_error"]),
            "customers": len(back["customers"]),
            "params": {k: float(v) for k, v in bgnbd.params().items()},
            "penalizer": penalizer,
            "evaluation": data.evaluation.describe(),
        },
        fitted={"bgnbd": bgnbd},
        said=(
            f"clv: predicted {back['predicted_purchases']:,.0f} purchases from "
            f"{start.date()} ({data.evaluation.kind}), actual "
            f"{back['actual_purchases']:,.0f}"
        ),
    )
    gamma = spend_model(summary, outcome.skipped)
    if gamma is not None:
        outcome.fitted["gamma"] = gamma
        outcome.scores[score_properties.CLV_VALUE] = clv.clv(
            summary, bgnbd, gamma, data.horizon_days
        )
    return outcome


def _unpenalised_if_it_fits(fit: Callable[[float], Fitted]) -> tuple[Fitted, float]:
    """`fit(0)`, the plain maximum-likelihood fit (the reference BG/NBD and Gamma-Gamma, as in
    Fader, Hardie & Lee and the `lifetimes` library), unless the data do not pin its parameters
    down (a `ConvergenceWarning`: small data sets, where they run off to extreme values); then
    `fit(CLV_PENALIZER)`. Returns the fit and the penalizer used."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        found = fit(0.0)
    if not any(issubclass(w.category, ConvergenceWarning) for w in caught):
        return found, 0.0
    return fit(CLV_PENALIZER), CLV_PENALIZER


def spend_model(summary: pd.DataFrame, skipped: dict[str, str]) -> clv.GammaGammaModel | None:
    """Gamma-Gamma fitted on the repeat buyers, or None with the reason in `skipped`
    ("clv_value": the expected purchases are still scored)."""
    repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeaters) < 10:
        skipped["clv_value"] = (
            f"{len(repeaters)} customers with repeat purchases of positive value; "
            "Gamma-Gamma needs 10"
        )
        return None
    gamma, _ = _unpenalised_if_it_fits(
        lambda penalizer: clv.GammaGammaModel(penalizer=penalizer).fit(repeaters)
    )
    if gamma.params()["q"] <= 1:
        skipped["clv_value"] = (
            f"Gamma-Gamma fitted q = {gamma.params()['q']:.3g} <= 1: the spend per purchase "
            "varies too much between customers for a finite expected value"
        )
        return None
    return gamma


# --- Social demand -------------------------------------------------------------------------


def demand_stage(data: StageInput) -> StageOutcome:
    if not data.has_categories:
        raise NotEnoughData(
            "no order lines with products" if not data.product_lines
            else "no product bought before as_of has a category"
        )  # fmt: skip
    if data.ties is None:
        raise NotEnoughData("no social ties in the graph")
    model = demand.SocialDemandModel(random_state=data.seed)
    found, chances = demand.evaluate_and_predict(
        data.customers, data.orders, data.lines, data.interactions, data.ties, data.as_of,
        data.horizon_days, seed=data.seed, model=model, evaluate_at=data.evaluation.end,
    )  # fmt: skip
    return StageOutcome(
        scores={score_properties.DEMAND: score_encoding.encode_demand(chances)},
        metrics={
            "auc": found.auc,
            "auc_without_network": found.auc_without_network,
            "auc_naive_social": found.auc_naive_social,
            "lift_over_without_network": found.lift_over_without_network,
            "lift_over_naive_social": found.lift_over_naive_social,
            "top_decile_lift": found.top_decile_lift,
            "n_test": found.n_test,
            "evaluation": data.evaluation.describe(),
        },
        fitted={"demand": model},
        said=(
            f"demand: AUC {found.auc:.3f} (without network {found.auc_without_network:.3f}, "
            f"naive social {found.auc_naive_social:.3f})"
        ),
    )
