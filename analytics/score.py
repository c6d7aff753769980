"""`crm-graph score`: score customers with the models of the last training, without retraining
(customers added or changed since, say).

Features are computed from the graph as it is now, as of the later of the training's `as_of`
and the day after the last order or contact; the fitted models (saved by `crm-graph train`)
turn them into scores, written back like training's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from crm_graph.analytics import churn, clv, demand, features, network, rfm
from crm_graph.analytics import scores as names
from crm_graph.analytics.extract import read_tables
from crm_graph.analytics.train import default_as_of, encode_drivers, epoch_ms, write_scores
from crm_graph.graph import analytics as cypher
from crm_graph.graph import events
from crm_graph.graph.store import GraphStore

RESCORED = tuple(p for p in names.PROPERTIES if p != names.RECOMMENDATIONS)
"""The properties `score_customers` writes (sets or removes) on each customer it scores."""


class NoModels(Exception):
    """There is no saved training to score with; the message says how to make one."""


def load_models(model_file: Path) -> dict[str, Any]:
    if not model_file.exists():
        raise NoModels(f"no trained models at {model_file}: run `crm-graph train` first")
    bundle: dict[str, Any] = joblib.load(model_file)
    return bundle


async def score_customers(
    store: GraphStore, customer_ids: Iterable[str], model_file: Path
) -> pd.DataFrame:
    """Score the given customers (unknown ids are skipped) and write their scores; return them."""
    bundle = load_models(model_file)
    models = bundle["models"]
    tables = await read_tables(store)
    wanted = [c for c in dict.fromkeys(customer_ids) if c in tables.customers.index]
    if not wanted:
        return pd.DataFrame()
    as_of = max(bundle["as_of"], default_as_of(tables))
    horizon = int(bundle["horizon_days"])
    levels = bundle.get("levels")  # None from a training before it was saved: as then
    seed = int(bundle["seed"])
    customers, orders, lines = tables.customers, tables.orders, tables.lines
    interactions, ties = tables.interactions, tables.ties
    known = orders[orders["at"] < as_of]
    scored = pd.DataFrame(index=pd.Index(wanted))

    table = rfm.rfm(known, as_of).reindex(wanted)
    scored[names.RFM_RECENCY_DAYS] = table["recency_days"]
    scored[names.RFM_FREQUENCY] = table["frequency"]
    scored[names.RFM_MONETARY] = table["monetary"]
    scored[names.RFM_SCORE] = table["rfm_score"]
    scored[names.RFM_SEGMENT] = table["rfm_segment"]
    tie_table = ties if len(ties) else None
    if tie_table is not None:
        net = network.network_features(ties, customers.index, lines, as_of, seed=seed)
        scored[names.PAGERANK] = net["pagerank"].reindex(wanted)
        scored[names.COMMUNITY] = net["community"].reindex(wanted)
        scored[names.DEGREE] = net["degree"].reindex(wanted)
    if "churn" in models:
        # as in training: a churn flag's model scores everyone, a derived one the customers
        # active at as_of (the others' risk is removed: the model says nothing of them)
        label = bundle.get("churn_label")
        if label is None:
            active = set(churn.active_customers(orders, customers, as_of))
            at_risk = [c for c in wanted if c in active]
        else:
            at_risk = wanted
        if at_risk:
            base = customers.drop(columns=[label]) if label in customers.columns else customers
            X = churn.churn_features(
                base, orders, lines, interactions, as_of, ties=tie_table, seed=seed, levels=levels
            ).loc[at_risk]
            model: churn.ChurnModel = models["churn"]
            scored[names.CHURN_RISK] = model.churn_risk(X)
            scored[names.CHURN_DRIVERS] = encode_drivers(model.drivers(X, top=3))
    if "bgnbd" in models:
        summary = clv.summary(known, as_of).reindex(wanted).dropna()
        if len(summary):
            scored[names.CLV_PURCHASES] = models["bgnbd"].predict_purchases(summary, horizon)
            scored[names.CLV_ALIVE] = models["bgnbd"].probability_alive(summary)
            if "gamma" in models:
                scored[names.CLV_VALUE] = clv.clv(
                    summary, models["bgnbd"], models["gamma"], horizon
                )
            scored[names.CLV_HORIZON_DAYS] = pd.Series(horizon, index=summary.index)
    if "demand" in models and tie_table is not None:
        X = demand.demand_features(customers, orders, lines, interactions, ties, as_of, seed=seed)
        X = X[X.index.get_level_values(0).isin(wanted)]
        if len(X):
            chances = pd.Series(models["demand"].predict_proba(X)[:, 1], index=X.index)
            scored[names.DEMAND] = names.encode_demand(chances)
    labels = None
    if "segmentation" in models:
        table = features.customer_features(
            customers, orders, lines, interactions, as_of, levels=levels
        )
        labels = models["segmentation"].predict(table.loc[wanted])
        # and their place in the segments map, as training gives it
        picture = models["segmentation"].pca_2d(table.loc[wanted])
        scored[names.SEGMENT_X] = picture["pc1"]
        scored[names.SEGMENT_Y] = picture["pc2"]
    scored[names.MODEL_VERSION] = bundle["version"]
    scored[names.AS_OF] = epoch_ms(as_of)
    scored[names.SCORED_AT] = int(time.time() * 1000)
    # every score property but the recommendations (training's, kept): set, or removed when
    # this scoring has no value for it, so no older value passes for this one's
    await write_scores(store, scored.reindex(columns=RESCORED))
    if labels is not None:
        assignments = [
            {"id": str(c), "segment": f"{names.SEGMENT_MODEL}:{int(k)}"} for c, k in labels.items()
        ]
        await cypher.reassign_segments(store, names.SEGMENT_MODEL, wanted, assignments)
    await events.record(
        store, events.SCORES_WRITTEN, [], version=bundle["version"], customers=len(scored)
    )
    return scored
