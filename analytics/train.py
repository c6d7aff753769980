"""`crm-graph train`: everything the data supports, trained from the graph as of one date,
evaluated on held-out data, written back with its version, summarised in model cards.

`train` runs the stages of `analytics.stages` (one function per model, each taking the tables,
`as_of`, the horizon and the evaluation period, returning scores, metrics and fitted models or
the reason it was skipped) and writes what they made back through `graph.analytics_queries`.
Each model is trained on what was known before `as_of` and measured on the real future when the
graph holds it (its events run to the end of the horizon after `as_of`), else on a back-test one
horizon before `as_of`; the report says which. A model the data cannot support is skipped with the
reason in terms of the data (no ties: no network features or social demand; no order lines with
products: no rules or recommendations; no categories: no demand; too few orders: no CLV or
churn, unless churn is learnt from a flag the customers carry).
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from crm_graph.analytics import clv, features, frames, recommend, rules, score_encoding, stages
from crm_graph.analytics.extract import Tables, read_tables
from crm_graph.analytics.frames import NotEnoughData, utc
from crm_graph.analytics.segments import SegmentationModel
from crm_graph.analytics.stages import MIN_ORDERS, encode_drivers  # noqa: F401 (re-exported)
from crm_graph.graph import analytics_queries, score_properties
from crm_graph.graph.store import GraphStore

log = logging.getLogger(__name__)

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
    evaluation: stages.Evaluation | None = None
    """Where the held-out figures come from: the real future after `as_of`, or a back-test."""
    worker_peak_rss_mb: float | None = None
    """The worker process's peak resident memory, when there was one (this process's own is
    the caller's to read)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            **({} if self.evaluation is None else {"evaluation": self.evaluation.as_json()}),
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


def _spend_model(summary: pd.DataFrame, report: TrainReport) -> clv.GammaGammaModel | None:
    """`stages.spend_model`, its reason for skipping the value in `report.skipped`."""
    return stages.spend_model(summary, report.skipped)


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
    """The start of the day after the last order or contact; with none (customers and their
    attributes only, which have no date), the start of tomorrow (UTC)."""
    last = tables.last_event
    if last is None or pd.isna(last):
        return (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)).normalize()
    return (last + pd.Timedelta(days=1)).normalize()


@dataclass
class RulesOutcome:
    """What `rules_and_recommendations` returns: the two stages' metrics, each customer's
    recommendations encoded for the graph, the seconds each stage took, and why the rules were
    skipped, if they were (the recommendations then still are)."""

    rules: dict[str, Any]
    recommendations: dict[str, Any]
    encoded: pd.Series
    seconds: dict[str, float]
    peak_rss_mb: float
    rules_skipped: str | None = None


def rules_and_recommendations(
    lines: pd.DataFrame,
    ties: pd.DataFrame | None,
    customers: pd.Index,
    as_of: pd.Timestamp,
    horizon_days: int,
    segments: pd.Series | None,
    features_at_start: pd.DataFrame,
    seed: int,
    evaluation_start: pd.Timestamp | None = None,
    recommender: dict[str, Any] | None = None,
) -> RulesOutcome:
    """Association rules mined before `as_of` (and, for their evaluation, before
    `evaluation_start`), the recommender evaluated over `[evaluation_start, evaluation_start +
    horizon)`, then fitted as of `as_of` and asked for each customer's ten best products.
    `evaluation_start` defaults to one horizon before `as_of` (the back-test); it is `as_of`
    itself when the lines hold the real future. `segments` are the customers' segments as of
    `as_of`; the evaluation's are fitted here on `features_at_start`, the customers' features at
    `evaluation_start` (in a back-test, the segments as of `as_of` know the held-out purchases).
    Runs in a worker process when `train` has two. `recommender`: parameters of
    `recommend.Recommender` other than its defaults (benches compare them)."""
    seconds: dict[str, float] = {}
    params = recommender or {}
    with frames.collector_paused():
        started = time.perf_counter()
        start = as_of - pd.Timedelta(days=horizon_days) if evaluation_start is None else utc(
            evaluation_start)  # fmt: skip
        end = start + pd.Timedelta(days=horizon_days)
        try:
            earlier = SegmentationModel(random_state=seed)
            segments_at_start = earlier.fit_predict(features_at_start).map(earlier.segment_names())
        except NotEnoughData:
            segments_at_start = None
        seconds["segments at the evaluation's start"] = time.perf_counter() - started
        started = time.perf_counter()
        # the rules reported are the ones the recommender blends in: mined once each
        miner = recommend.Recommender(**params)
        thresholds: dict[str, Any] = {
            "min_support": miner.min_support,
            "min_confidence": miner.min_confidence,
            "max_len": miner.max_len,
            "item_col": miner.item_col,
        }
        skipped = _no_rules(lines, as_of, miner.item_col)
        if skipped is None:
            mined = rules.rules(lines, as_of, **thresholds)
            held_out = rules.rules(lines, start, **thresholds)
            checked = rules.evaluate_rules(held_out, lines, start=start, end=end)
            rule_metrics = {"count": len(mined), **_scalars(vars(checked))}
        else:
            mined = held_out = None
            rule_metrics = {}
        seconds["rules"] = time.perf_counter() - started
        started = time.perf_counter()
        evaluated = recommend.Recommender(**params).fit(
            lines, ties, as_of=start, segments=segments_at_start, rules=held_out
        )
        quality = evaluated.evaluate(lines, end)
        model = recommend.Recommender(**params).fit(
            lines, ties, as_of=as_of, segments=segments, rules=mined
        )
        # Asked for and encoded a slice of customers at a time: the million recommendations of
        # 100k customers, each with its reasons, were 400 MB of rows and texts at once.
        step = RECOMMEND_SLICE
        parts = [customers[i : i + step] for i in range(0, len(customers), step)] or [customers]
        encoded = pd.concat(
            [
                score_encoding.encode_recommendations(model.recommend(part, first=10))
                for part in parts
            ]
        )
        seconds["recommendations"] = time.perf_counter() - started
    return RulesOutcome(rule_metrics, _scalars(vars(quality)), encoded, seconds, _peak_rss_mb(),
                        skipped)  # fmt: skip


def _no_rules(lines: pd.DataFrame, as_of: pd.Timestamp, item_col: str) -> str | None:
    """Why no rule can be mined before `as_of`: no order before it holds two products (a rule
    needs two in one order); None when one does."""
    past = lines.loc[(lines["at"] < as_of) & lines[item_col].notna(), ["transaction_id", item_col]]
    if past.empty:
        return f"no order line names a product before as_of ({as_of.date()})"
    distinct = past.drop_duplicates().groupby("transaction_id", sort=False).size()
    if int(distinct.max()) < 2:
        return (
            f"every one of the {len(distinct):,} orders before as_of holds a single product: "
            "a rule needs two bought together"
        )
    return None


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
    if not len(tables.customers):
        raise ValueError("the graph holds no customers, no orders or contacts: nothing to train on")
    as_of = default_as_of(tables) if as_of is None else utc(as_of)
    evaluation = stages.choose_evaluation(tables.last_event, as_of, horizon_days)
    version = f"{as_of.strftime('%Y%m%d')}-{uuid.uuid4().hex[:8]}"
    report = TrainReport(version, as_of, horizon_days, churn_label=churn_label,
                         evaluation=evaluation)  # fmt: skip
    report.seconds["read"] = time.perf_counter() - clock
    report.peak_rss_mb["read"] = _peak_rss_mb()
    customers = tables.customers
    say(
        f"read {len(customers):,} customers, {len(tables.orders):,} orders, "
        f"{len(tables.lines):,} lines, {len(tables.ties):,} ties; as of {as_of.date()}; "
        f"evaluated on the {evaluation.describe()}"
    )
    if processes is None:
        processes = 2 if len(customers) >= PARALLEL_FROM and available_cores() >= 2 else 1
    data = stages.StageInput(
        customers, tables.orders, tables.lines, tables.interactions,
        tables.ties if len(tables.ties) else None, as_of, horizon_days, evaluation, seed,
        churn_label,
    )  # fmt: skip
    scored = pd.DataFrame(index=customers.index)
    fitted: dict[str, Any] = {}

    def timed(name: str) -> Callable[[], None]:
        started = time.perf_counter()

        def done() -> None:
            report.seconds[name] = time.perf_counter() - started
            report.peak_rss_mb[name] = _peak_rss_mb()

        return done

    def run(name: str, stage: Callable[[stages.StageInput], stages.StageOutcome]
            ) -> stages.StageOutcome | None:  # fmt: skip
        """Run a stage and keep what it made, or its reason for being skipped."""
        done = timed(name)
        try:
            outcome = stage(data)
        except NotEnoughData as short:
            report.skipped[name] = str(short)
            return None
        for prop, values in outcome.scores.items():
            scored[prop] = values
        fitted.update(outcome.fitted)
        if outcome.metrics is not None:
            report.metrics[name] = outcome.metrics
        report.skipped.update(outcome.skipped)
        done()
        if outcome.said:
            say(outcome.said)
        return outcome

    # Churn, demand and segments describe customers at the same cut-offs: once each.
    with contextlib.ExitStack() as stack:
        stack.enter_context(features.reusing_customer_features())
        stack.enter_context(frames.collector_paused())
        run("rfm", stages.rfm_stage)
        segmented = run("segments", stages.segments_stage)
        segments = segmented.kept if segmented is not None else stages.no_segments()

        # Rules and recommendations need the segments and nothing the other models make: with
        # two processes, a worker mines and recommends while this one trains the rest.
        if data.product_lines:
            done = timed("features at the evaluation's start")
            at_start = data.features(evaluation.start)
            done()
            labels = segments["labels"]
            arguments = (data.lines, data.ties, customers.index, as_of, horizon_days,
                         labels.map(segments["names"]) if len(labels) else None, at_start, seed,
                         evaluation.start)  # fmt: skip
            if processes > 1:
                done = timed("starting the worker")
                worker = _Worker(rules_and_recommendations, arguments)
                stack.callback(worker.stop)
                done()
        else:
            reason = (
                "no order lines name a product" if not len(data.lines)
                else f"no order line names a product before as_of ({as_of.date()})"
            )  # fmt: skip
            report.skipped["rules"] = report.skipped["recommendations"] = reason

        run("network", stages.network_stage)
        run("churn", stages.churn_stage)
        run("clv", stages.clv_stage)
        run("demand", stages.demand_stage)

        if data.product_lines:
            if processes > 1:
                done = timed("waiting for the worker")
                outcome = await asyncio.to_thread(worker.result)
                done()
                report.worker_peak_rss_mb = outcome.peak_rss_mb
            else:
                outcome = rules_and_recommendations(*arguments)
            if outcome.rules_skipped is None:
                report.metrics["rules"] = outcome.rules
            else:
                report.skipped["rules"] = outcome.rules_skipped
            report.metrics["recommendations"] = outcome.recommendations
            for metrics in (outcome.rules, outcome.recommendations):
                metrics["evaluation"] = evaluation.describe()
            report.seconds.update(outcome.seconds)
            scored[score_properties.RECOMMENDATIONS] = outcome.encoded

        run("markov", stages.markov_stage)

    # -- write back -------------------------------------------------------------------------------
    done = timed("write")
    scored[score_properties.MODEL_VERSION] = version
    scored[score_properties.AS_OF] = epoch_ms(as_of)
    scored[score_properties.SCORED_AT] = int(time.time() * 1000)
    report.customers_scored = await write_scores(
        store, scored.reindex(columns=score_properties.PROPERTIES)
    )
    await _write_segments(store, segments["labels"], segments["names"], segments["profiles"],
                          version)  # fmt: skip
    await _write_cards(store, report)
    if model_dir is not None:
        levels = features.property_levels(customers)
        report.model_file = save_models(model_dir, report, fitted, seed, levels)
    done()
    report.total_seconds = time.perf_counter() - clock
    return report


async def write_scores(store: GraphStore, scored: pd.DataFrame) -> int:
    """Set each customer's properties to the values of their row; a missing value (None, NaN)
    removes the property (`graph.analytics_queries.write_scores`, one property per removal)."""
    names_ = [str(name) for name in scored.columns]
    for name in names_:
        if not analytics_queries.SCORE_PROPERTY.fullmatch(name):
            raise ValueError(f"not a score property name: {name!r}")
    columns = [_clean_column(scored[name]) for name in scored.columns]
    ids = [str(cid) for cid in scored.index]
    records = [
        {"id": cid, "scores": {k: v for k, v in zip(names_, row, strict=True) if v is not None}}
        for cid, row in zip(ids, zip(*columns, strict=True), strict=True)
    ]
    removed = {
        name: [cid for cid, value in zip(ids, column, strict=True) if value is None]
        for name, column in zip(names_, columns, strict=True)
    }
    await analytics_queries.write_scores(store, records, removed)
    return len(records)


async def _write_segments(
    store: GraphStore,
    labels: pd.Series,
    segment_names: pd.Series,
    profiles: pd.DataFrame,
    version: str,
) -> None:
    model = score_properties.SEGMENT_MODEL
    segments = [
        {
            "id": f"{model}:{int(k)}",
            "props": {
                "name": str(segment_names[k]),
                "model": model,
                "version": version,
                "profile": score_properties.encode(
                    {c: clean_value(v) for c, v in profiles.loc[k].items()}
                ),
            },
        }
        for k in sorted(segment_names.index)
    ]
    members = [{"id": str(c), "segment": f"{model}:{int(k)}"} for c, k in labels.items()]
    await analytics_queries.write_segments(store, model, segments, members)


async def _write_cards(store: GraphStore, report: TrainReport) -> None:
    trained_at = int(time.time() * 1000)
    cards = [
        {
            "id": f"{name}:{report.version}",
            "props": {
                "name": name,
                "version": report.version,
                "asOf": epoch_ms(report.as_of),
                "trainedAt": trained_at,
                "horizonDays": report.horizon_days,
                "metrics": score_properties.encode(metrics),
                "params": score_properties.encode({}),
            },
        }
        for name, metrics in report.metrics.items()
    ]
    event = {
        "version": report.version,
        "customers": report.customers_scored,
        "models": sorted(report.metrics),
    }
    await analytics_queries.save_model_cards(store, cards, event)


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
