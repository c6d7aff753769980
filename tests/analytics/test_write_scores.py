"""Writing scores back: values set, missing ones removed, and nothing else touched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_graph.analytics.train import write_scores
from crm_graph.graph import score_properties
from crm_graph.graph.store import GraphStore

PROFILE = {"name": "Ann", "email": "ann@example.com", "country": "GB", "age": 41}


async def _properties(store: GraphStore, customer: str) -> dict[str, object]:
    rows = await store.read(
        "MATCH (c:Customer {id: $id}) RETURN properties(c) AS p", {"id": customer}
    )
    return dict(rows[0]["p"])


async def test_missing_scores_remove_exactly_their_properties(store: GraphStore) -> None:
    # given customers with a profile and every score property, the last ones written last
    # (FalkorDB removed the wrong property when one statement removed the first and the last)
    everything = {name: 1.0 for name in score_properties.PROPERTIES}
    for customer in ("a", "b"):
        await store.write(
            "CREATE (c:Customer {id: $id}) SET c += $profile SET c += $scores",
            {"id": customer, "profile": PROFILE, "scores": everything},
        )
    # when a training has values for some properties only: a's first and last are missing,
    # b has all but one in the middle
    kept = {
        score_properties.PAGERANK,
        score_properties.COMMUNITY,
        score_properties.DEGREE,
        score_properties.MODEL_VERSION,
    }
    scored = pd.DataFrame(
        {
            name: [
                2.0 if name in kept else np.nan,
                np.nan if name == score_properties.DEMAND else 3.0,
            ]
            for name in score_properties.PROPERTIES
        },
        index=["a", "b"],
    )
    assert await write_scores(store, scored) == 2
    # then each keeps its profile and id, has the values given, and lacks the missing ones
    assert await _properties(store, "a") == {"id": "a", **PROFILE, **{k: 2.0 for k in kept}}
    b = {name: 3.0 for name in score_properties.PROPERTIES if name != score_properties.DEMAND}
    assert await _properties(store, "b") == {"id": "b", **PROFILE, **b}


async def test_a_column_that_is_not_a_score_property_is_refused(store: GraphStore) -> None:
    with pytest.raises(ValueError, match="not a score property"):
        await write_scores(store, pd.DataFrame({"email": [None]}, index=["a"]))
