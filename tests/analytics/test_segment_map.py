"""The segments map: training keeps each segmented customer's place in the 2-D picture (the
first two principal components of the scaled features) as `mlSegmentX`/`mlSegmentY`, and
`crm-graph score` gives a rescored customer its place as it gives its segment."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np

from crm_graph.analytics.score import score_customers
from crm_graph.analytics.train import train
from crm_graph.graph import score_properties
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from crm_graph.loaders.synthetic import generate

PLACES = """
MATCH (c:Customer)
OPTIONAL MATCH (c)-[:IN_SEGMENT]->(g:Segment {model: 'segments'})
RETURN c.id AS id, c.mlSegmentX AS x, c.mlSegmentY AS y, g.id AS segment
ORDER BY id
"""


async def test_training_keeps_each_customers_place_and_scoring_gives_it_again(
    store: GraphStore, tmp_path: Path
) -> None:
    # given a generated business, trained with its models saved
    generate(tmp_path / "biz", 300, seed=41)
    await load_folder(store, tmp_path / "biz", progress=False)
    report = await train(store, horizon_days=90, model_dir=tmp_path / "models", processes=1)
    # then every segmented customer has a place, and only they
    rows = await store.read(PLACES)
    placed = [r for r in rows if r["segment"] is not None]
    assert placed and all(r["x"] is not None and r["y"] is not None for r in placed)
    assert all(r["x"] is None and r["y"] is None for r in rows if r["segment"] is None)
    # and the places are the picture of the training table: centred, the first axis the widest,
    # the axes' shares of variance those the model card reports
    x = np.array([r["x"] for r in placed])
    y = np.array([r["y"] for r in placed])
    assert abs(x.mean()) < 1e-6 and abs(y.mean()) < 1e-6
    assert x.var() >= y.var() > 0
    model = joblib.load(report.model_file)["models"]["segmentation"]
    assert report.metrics["segments"]["explainedVariance"] == [
        float(v) for v in model.explained_variance_ratio_
    ]
    ratio = x.var() / y.var()
    expected = model.explained_variance_ratio_[0] / model.explained_variance_ratio_[1]
    assert abs(ratio - expected) < 1e-6 * expected
    # when a customer is rescored with nothing new about them
    chosen = placed[len(placed) // 2]
    scored = await score_customers(store, [chosen["id"]], report.model_file)
    # then they keep their place (the same model on the same features), in the graph too
    assert abs(scored.loc[chosen["id"], score_properties.SEGMENT_X] - chosen["x"]) < 1e-9
    after = {r["id"]: r for r in await store.read(PLACES)}[chosen["id"]]
    assert abs(after["x"] - chosen["x"]) < 1e-9 and abs(after["y"] - chosen["y"]) < 1e-9
