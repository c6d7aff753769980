"""Network features: degree, clustering, PageRank, communities, neighbours' purchases and churn,
distance to high-value customers, on tiny graphs worked out by hand, and the coarsened Louvain
on a graph with planted circles."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from crm_graph.analytics.frames import FrameError
from crm_graph.analytics.network import (
    NETWORK_COLUMNS,
    neighbour_purchases,
    network_features,
    social_graph,
)

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")
CUSTOMERS = pd.Index(["A", "B", "C", "D", "E", "F", "G"], name="customer_id")


def _ties(rows: list[tuple[str, str, str, float | None]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["source", "target", "type", "weight"])


# A-B-C a triangle, D hangs off A, E alone, F-G a pair; A and B are tied twice (two types).
TIES = _ties([
    ("A", "B", "KNOWS", 0.5), ("B", "A", "FAMILY", 0.25), ("B", "C", "KNOWS", 1.0),
    ("C", "A", "COLLEAGUE", None), ("D", "A", "REFERRED", 0.5), ("F", "G", "KNOWS", 2.0),
    ("A", "A", "KNOWS", 1.0), ("A", "Z", "KNOWS", 1.0),  # a self tie and a stranger: ignored
])  # fmt: skip


def _lines(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "at", "category", "amount"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["transaction_id"] = [f"T{i}" for i in range(len(frame))]
    frame["product_id"] = "P1"
    frame["quantity"] = 1
    return frame


LINES = _lines([
    ("B", "2024-05-20", "Books", 10.0),   # in the 90-day window
    ("C", "2023-12-01", "Books", 10.0),   # before the window
    ("D", "2024-04-01", "Toys", 500.0),   # in the window; D spends the most
    ("A", "2024-06-01", "Toys", 10.0),    # at as_of: not read
    ("C", "2024-07-01", "Toys", 10.0),    # after as_of: not read
])  # fmt: skip


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return network_features(TIES, CUSTOMERS, LINES, AS_OF, high_value=["D"])


def test_degree_counts_each_neighbour_once_and_sums_tie_weights(features: pd.DataFrame) -> None:
    assert features["degree"].to_dict() == {"A": 3, "B": 2, "C": 2, "D": 1, "E": 0, "F": 1,
                                            "G": 1}  # fmt: skip
    # A: B (0.5 + 0.25) + C (missing weight counts 1) + D (0.5)
    assert features.loc["A", "weighted_degree"] == pytest.approx(2.25)
    assert features.loc["F", "weighted_degree"] == pytest.approx(2.0)
    assert list(features.index) == list(CUSTOMERS)
    assert list(features.columns[: len(NETWORK_COLUMNS)]) == list(NETWORK_COLUMNS)


def test_clustering_and_pagerank_agree_with_networkx(features: pd.DataFrame) -> None:
    # A has friends B, C, D and one of their three pairs (B-C) are friends.
    assert features["clustering"].to_dict() == pytest.approx(
        {"A": 1 / 3, "B": 1.0, "C": 1.0, "D": 0.0, "E": 0.0, "F": 0.0, "G": 0.0}
    )
    graph = social_graph(TIES, CUSTOMERS)
    assert graph["A"]["B"]["weight"] == pytest.approx(0.75)
    assert sorted(graph.nodes) == sorted(CUSTOMERS)
    expected = nx.pagerank(graph, weight="weight")
    assert features["pagerank"].to_dict() == pytest.approx(expected, abs=1e-6)
    assert features["pagerank"].sum() == pytest.approx(1.0)


def test_neighbour_shares_count_recent_purchases_before_as_of(features: pd.DataFrame) -> None:
    assert [c for c in features.columns if c.startswith("nbr_share_")] == [
        "nbr_share_Books", "nbr_share_Toys"]  # fmt: skip
    # A's neighbours B, C, D: B bought Books in the window (C only before it), D bought Toys.
    assert features.loc["A", "nbr_count_Books"] == 1
    assert features.loc["A", "nbr_share_Books"] == pytest.approx(1 / 3)
    assert features.loc["A", "nbr_share_Toys"] == pytest.approx(1 / 3)
    # C's neighbours A, B: B bought Books; A's Toys at as_of does not count.
    assert features.loc["C", "nbr_share_Books"] == pytest.approx(0.5)
    assert features.loc["C", "nbr_share_Toys"] == 0.0
    # B's neighbours A and C; C's Toys came after as_of.
    assert features.loc["B", "nbr_count_Toys"] == 0
    assert features.loc["E", ["nbr_share_Books", "nbr_share_Toys"]].tolist() == [0.0, 0.0]


def test_a_longer_window_reaches_older_purchases() -> None:
    year = network_features(TIES, CUSTOMERS, LINES, AS_OF, window_days=365)
    assert year.loc["A", "nbr_count_Books"] == 2


def test_distance_to_the_nearest_high_value_customer_is_capped(features: pd.DataFrame) -> None:
    assert features["high_value_distance"].to_dict() == {"A": 1, "B": 2, "C": 2, "D": 0,
                                                         "E": 6, "F": 6, "G": 6}  # fmt: skip
    capped = network_features(TIES, CUSTOMERS, LINES, AS_OF, high_value=["D"], max_distance=2)
    assert capped["high_value_distance"].to_dict() == {"A": 1, "B": 2, "C": 2, "D": 0, "E": 2,
                                                       "F": 2, "G": 2}  # fmt: skip
    flags = pd.Series([False, False, False, False, False, True, False], index=CUSTOMERS)
    by_flag = network_features(TIES, CUSTOMERS, LINES, AS_OF, high_value=flags)
    assert by_flag.loc[["F", "G", "A"], "high_value_distance"].tolist() == [0, 1, 6]


def test_high_value_defaults_to_the_top_spenders_before_as_of() -> None:
    default = network_features(TIES, CUSTOMERS, LINES, AS_OF)  # top 10% of 7: one customer, D
    assert default.loc["D", "high_value_distance"] == 0
    assert (default["high_value_distance"] == 0).sum() == 1


def test_neighbours_churn_share_ignores_neighbours_without_a_score() -> None:
    churned = pd.Series({"B": 1, "C": 0, "F": 0.4})
    out = network_features(TIES, CUSTOMERS, LINES, AS_OF, churned=churned)
    assert out.loc["A", "nbr_churn_share"] == pytest.approx(0.5)  # B and C known, D not
    assert out.loc["G", "nbr_churn_share"] == pytest.approx(0.4)
    assert np.isnan(out.loc["D", "nbr_churn_share"])  # its only neighbour, A, has no score
    assert np.isnan(out.loc["E", "nbr_churn_share"])
    assert "nbr_churn_share" not in network_features(TIES, CUSTOMERS, LINES, AS_OF).columns


def test_communities_are_the_connected_circles_numbered_by_size(
    features: pd.DataFrame,
) -> None:
    community = features["community"]
    assert community["A"] == community["B"] == community["C"] == community["D"] == 0
    assert community["F"] == community["G"] == 1
    assert community["E"] == 2
    assert features["community_size"].to_dict() == {"A": 4, "B": 4, "C": 4, "D": 4, "E": 1,
                                                     "F": 2, "G": 2}  # fmt: skip


def test_social_graph_without_an_index_holds_the_tied_customers() -> None:
    graph = social_graph(TIES)
    assert sorted(graph.nodes) == ["A", "B", "C", "D", "F", "G", "Z"]
    assert graph.number_of_edges() == 6  # A-B, B-C, C-A, D-A, F-G, A-Z; the self tie is gone
    assert graph["C"]["A"]["weight"] == 1.0


def test_neighbour_purchases_long_table() -> None:
    table = neighbour_purchases(TIES, CUSTOMERS, LINES, AS_OF, 90)
    assert table.index.names == ["customer_id", "category"]
    assert len(table) == len(CUSTOMERS) * 2
    assert table.loc[("A", "Books"), "nbr_share"] == pytest.approx(1 / 3)
    # weighted by tie strength: B 0.75 of A's 2.25
    assert table.loc[("A", "Books"), "nbr_weighted_share"] == pytest.approx(0.75 / 2.25)
    # B bought Books 12 days before as_of: week 1 (7-14 days back) weighs 0.7
    assert table.loc[("A", "Books"), "nbr_exposure"] == pytest.approx(0.7 / 3)
    assert table.loc[("E", "Books"), "nbr_exposure"] == 0.0


def _planted_circles(circles: int, size: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Dense circles with a few ties between them; returns ties and each node's circle."""
    rng = np.random.default_rng(seed)
    rows = []
    circle = np.repeat(np.arange(circles), size)
    n = circles * size
    for a in range(n):
        for b in range(a + 1, n):
            p = 0.3 if circle[a] == circle[b] else 0.002
            if rng.random() < p:
                rows.append((f"N{a:04d}", f"N{b:04d}", "KNOWS", float(rng.uniform(0.2, 1.0))))
    return _ties(rows), circle


def test_coarsened_louvain_finds_planted_circles_like_networkx() -> None:
    ties, circle = _planted_circles(circles=8, size=40, seed=3)
    index = pd.Index([f"N{a:04d}" for a in range(len(circle))])
    empty = LINES.iloc[:0]
    exact = network_features(ties, index, empty, AS_OF, seed=1)
    coarse = network_features(ties, index, empty, AS_OF, seed=1, exact_louvain_nodes=50)
    again = network_features(ties, index, empty, AS_OF, seed=1, exact_louvain_nodes=50)
    assert coarse["community"].equals(again["community"])
    for found in (exact["community"], coarse["community"]):
        # every planted circle is one community and no two circles share one
        pairs = pd.crosstab(found.to_numpy(), circle)
        assert (pairs > 0).sum(axis=1).max() == 1
        assert (pairs > 0).sum(axis=0).max() == 1
    graph = social_graph(ties, index)

    def modularity(labels: pd.Series) -> float:
        groups = [set(labels.index[labels == k]) for k in labels.unique()]
        return nx.community.modularity(graph, groups, weight="weight")

    assert modularity(coarse["community"]) == pytest.approx(modularity(exact["community"]),
                                                            abs=0.01)  # fmt: skip


def test_customers_without_ties_or_lines_get_zero_rows() -> None:
    out = network_features(TIES.iloc[:0], CUSTOMERS, LINES.iloc[:0], AS_OF)
    assert (out["degree"] == 0).all()
    assert out["community"].nunique() == len(CUSTOMERS)
    assert (out["high_value_distance"] == 6).all()


def test_missing_columns_are_named() -> None:
    with pytest.raises(FrameError, match="weight|target"):
        network_features(TIES.drop(columns="target"), CUSTOMERS, LINES, AS_OF)
    with pytest.raises(FrameError, match="category"):
        network_features(TIES, CUSTOMERS, LINES.drop(columns="category"), AS_OF)


def test_the_graph_measures_are_kept_across_cut_offs_and_handed_out_as_copies() -> None:
    first = network_features(TIES, CUSTOMERS, LINES, AS_OF)
    first["pagerank"] *= 0  # a caller changing its table changes nobody else's
    first_array = network_features(TIES, CUSTOMERS, LINES, AS_OF)
    later = network_features(TIES, CUSTOMERS, LINES, AS_OF + pd.Timedelta(days=400))
    for column in ("pagerank", "clustering", "community"):
        pd.testing.assert_series_equal(later[column], first_array[column])
    assert first_array["pagerank"].sum() == pytest.approx(1.0)
    other = network_features(TIES.iloc[2:], CUSTOMERS, LINES, AS_OF)  # A-B untied: another graph
    assert not other["pagerank"].equals(first_array["pagerank"])
