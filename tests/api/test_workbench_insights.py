"""The aggregates the explore page's dashboards and segments map read, on the `shop` business
with scores written by hand (what `crm-graph train` writes, without the minute of training):

    c00..c11, spend 10 30 10 0 30 5 0 10 30 5 0 10; c00-c01 KNOWS, c03-c04 FAMILY, c06-c03 KNOWS
"""

from __future__ import annotations

from typing import Any

import pytest

from crm_graph.api.auth.principal import Role
from crm_graph.graph.store import GraphStore
from tests.conftest import Api

RISK = [0.0, 0.05, 0.15, 0.1, 0.95, 1.0, 0.5, 0.55, 0.99, None, 0.3, 0.31]
COMMUNITY = [0, 0, 1, 1, 1, None, 2, 2, 2, 2, None, 0]


async def _scores(store: GraphStore) -> None:
    rows: list[dict[str, Any]] = []
    for i, (risk, community) in enumerate(zip(RISK, COMMUNITY, strict=True)):
        scores: dict[str, Any] = {}
        if risk is not None:
            scores["mlChurnRisk"] = risk
        if community is not None:
            scores["mlCommunity"] = community
        rows.append({"id": f"c{i:02d}", "scores": scores})
    await store.write(
        "UNWIND $rows AS r MATCH (c:Customer {id: r.id}) SET c += r.scores", {"rows": rows}
    )


DISTRIBUTION = "{ churnRiskDistribution(buckets: 4) { low high customers } }"


@pytest.mark.usefixtures("shop")
async def test_churn_risk_distribution_counts_every_scored_customer_in_its_slice(
    store: GraphStore, api_for: Any
) -> None:
    # given eleven scored customers (one unscored), risks at the slices' edges included
    await _scores(store)
    analyst: Api = await api_for(Role.ANALYST)
    # when the distribution is asked in quarters
    buckets = (await analyst.data(DISTRIBUTION))["churnRiskDistribution"]
    # then [0, .25) holds 0, .05, .15, .1; [.25, .5) .3, .31; [.5, .75) .5, .55; [.75, 1] the rest
    assert buckets == [
        {"low": 0.0, "high": 0.25, "customers": 4},
        {"low": 0.25, "high": 0.5, "customers": 2},
        {"low": 0.5, "high": 0.75, "customers": 2},
        {"low": 0.75, "high": 1.0, "customers": 3},
    ]


@pytest.mark.usefixtures("shop")
async def test_churn_risk_distribution_refuses_a_bucket_count_out_of_range(admin: Api) -> None:
    errors = await admin.errors("{ churnRiskDistribution(buckets: 0) { customers } }")
    assert errors[0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "churnRiskDistribution.buckets",
    }


@pytest.mark.usefixtures("shop")
async def test_most_at_risk_are_the_highest_risks_first_ties_by_id(
    store: GraphStore, admin: Api
) -> None:
    await _scores(store)
    found = (await admin.data("{ mostAtRisk(first: 4) { id churnRisk { score } } }"))["mostAtRisk"]
    assert [(c["id"], c["churnRisk"]["score"]) for c in found] == [
        ("c05", 1.0), ("c08", 0.99), ("c04", 0.95), ("c07", 0.55),
    ]  # fmt: skip


@pytest.mark.usefixtures("shop")
async def test_communities_carry_their_members_revenue(store: GraphStore, admin: Api) -> None:
    # given communities 0 (c00, c01, c11), 1 (c02, c03, c04), 2 (c06, c07, c08, c09)
    await _scores(store)
    # when they are listed
    found = (await admin.data("{ communities { id size revenue } }"))["communities"]
    # then each has the sum of its members' orders: 10+30+10, 10+0+30, 0+10+30+5
    assert found == [
        {"id": 2, "size": 4, "revenue": 45.0},
        {"id": 0, "size": 3, "revenue": 50.0},
        {"id": 1, "size": 3, "revenue": 40.0},
    ]


SEGMENT_MAP = """
query($sample: Int!) {
  segmentMap(sample: $sample) {
    points { customerId name x y segmentId } total explainedVariance modelVersion
  }
}
"""


async def _segments(store: GraphStore) -> None:
    """Two segments; every customer placed at (i, -i); a segmentation model card."""
    await store.write(
        "UNWIND [0, 1] AS k MERGE (g:Segment {id: 'segments:' + toString(k)}) "
        "SET g.model = 'segments', g.name = 'segment ' + toString(k)"
    )
    await store.write(
        "MATCH (c:Customer), (g:Segment {model: 'segments'}) "
        "WITH c, g, toInteger(substring(c.id, 1)) AS i "
        "WHERE g.id = 'segments:' + toString(i % 2) "
        "MERGE (c)-[:IN_SEGMENT]->(g) SET c.mlSegmentX = toFloat(i), c.mlSegmentY = -toFloat(i)"
    )
    await store.write(
        "CREATE (:ModelCard {id: 'segments:v1', name: 'segments', version: 'v1', "
        "trainedAt: 1, metrics: $metrics})",
        {"metrics": '{"k": 2, "explainedVariance": [0.6, 0.25]}'},
    )


@pytest.mark.usefixtures("shop")
async def test_segment_map_gives_each_customers_place_and_segment(
    store: GraphStore, admin: Api
) -> None:
    await _segments(store)
    found = (await admin.data(SEGMENT_MAP, sample=100))["segmentMap"]
    assert found["total"] == 12
    assert found["explainedVariance"] == [0.6, 0.25] and found["modelVersion"] == "v1"
    assert found["points"][:2] == [
        {"customerId": "c00", "name": "Ann", "x": 0.0, "y": -0.0, "segmentId": "segments:0"},
        {"customerId": "c01", "name": "Bob", "x": 1.0, "y": -1.0, "segmentId": "segments:1"},
    ]
    assert [p["customerId"] for p in found["points"]] == [f"c{i:02d}" for i in range(12)]


@pytest.mark.usefixtures("shop")
async def test_segment_map_samples_every_nth_customer_by_id(store: GraphStore, admin: Api) -> None:
    await _segments(store)
    found = (await admin.data(SEGMENT_MAP, sample=5))["segmentMap"]
    # 12 points, at most 5: every third
    assert [p["customerId"] for p in found["points"]] == ["c00", "c03", "c06", "c09"]
    assert found["total"] == 12


@pytest.mark.usefixtures("shop")
@pytest.mark.parametrize(
    "document",
    [DISTRIBUTION, "{ mostAtRisk { id } }", "{ segmentMap { total } }", "{ savedViews { name } }"],
)
async def test_partner_keys_are_denied_the_workbench_aggregates(
    api_for: Any, document: str
) -> None:
    partner: Api = await api_for(Role.PARTNER)
    errors = await partner.errors(document)
    field = document.split("{")[1].split("(")[0].strip()
    assert errors[0]["extensions"] == {"code": "FORBIDDEN", "field": field}
