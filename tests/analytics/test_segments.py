"""Segmentation: k by silhouette on hand-made groups of customers, names from the centroids, the
scikit-learn contract (unfitted refuses, deterministic), missing values and the PCA picture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError

from crm_graph.analytics.segments import SegmentationModel

# Four kinds of customer, as a marketer would describe them (medians of each group).
GROUPS = {
    "loyal high spenders": dict(recency_days=5, frequency=40, spend_total=5_000, tenure_days=2_000,
                                ticket_share=0.05),
    "at risk": dict(recency_days=300, frequency=8, spend_total=600, tenure_days=1_500,
                    ticket_share=0.10),
    "new": dict(recency_days=20, frequency=2, spend_total=150, tenure_days=30, ticket_share=0.05),
    "occasional": dict(recency_days=120, frequency=3, spend_total=200, tenure_days=1_800,
                       ticket_share=0.05),
}  # fmt: skip
PER_GROUP = 60


def _customers(seed: int = 1, per_group: int = PER_GROUP) -> tuple[pd.DataFrame, pd.Series]:
    """Customers of the four groups with ±10% noise, shuffled; and each one's true group."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for group, medians in GROUPS.items():
        for _ in range(per_group):
            rows.append({k: v * rng.uniform(0.9, 1.1) for k, v in medians.items()})
            truth.append(group)
    order = rng.permutation(len(rows))
    index = pd.Index([f"C{i:04d}" for i in range(len(rows))], name="customer_id")
    features = pd.DataFrame([rows[i] for i in order], index=index)
    return features, pd.Series([truth[i] for i in order], index=index)


@pytest.fixture(scope="module")
def fitted() -> tuple[SegmentationModel, pd.DataFrame, pd.Series]:
    features, truth = _customers()
    return SegmentationModel(k_range=(2, 6)).fit(features), features, truth


def test_finds_the_four_groups_and_names_them(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    # given four well separated groups of customers
    model, features, truth = fitted
    # when the model was fitted on them
    segments = model.predict(features)
    # then it chose four segments, each exactly one group, named after what the group does
    assert model.k_ == 4
    named = segments.map(model.names_)
    assert (named == truth).all()
    assert sorted(model.segment_names()) == sorted(GROUPS)


def test_silhouette_is_a_silhouette(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    model, _, _ = fitted
    assert -1.0 <= model.silhouette_ <= 1.0
    assert model.silhouette_ > 0.5  # the groups are far apart
    assert set(model.silhouettes_) == set(range(2, 7))
    assert model.silhouette_ == max(model.silhouettes_.values())


def test_centers_are_in_original_units(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    # given the fitted model; when reading the centre of the "loyal high spenders"
    model, _, _ = fitted
    loyal = next(s for s, name in model.names_.items() if name == "loyal high spenders")
    center = model.centers_.loc[loyal]
    # then it reads in days, orders and money, not standard deviations
    assert center["recency_days"] == pytest.approx(5, rel=0.1)
    assert center["frequency"] == pytest.approx(40, rel=0.1)
    assert center["spend_total"] == pytest.approx(5_000, rel=0.1)
    assert "spend_total" in model.log_columns_ and "frequency" in model.log_columns_


def test_roles_are_found_by_column_name(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    model, _, _ = fitted
    assert model.roles_ == {"recency": "recency_days", "frequency": "frequency",
                            "spend": "spend_total", "tenure": "tenure_days",
                            "ticket_share": "ticket_share"}  # fmt: skip


def test_profiles_give_size_share_and_means(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    model, features, _ = fitted
    # when profiling the training customers
    table = model.profiles(features)
    # then every segment has its name, size, share and the mean of the key columns
    assert list(table.index) == list(range(4))
    assert table["customers"].sum() == len(features)
    assert table["customers"].tolist() == [PER_GROUP] * 4
    assert table["share"].sum() == pytest.approx(1.0)
    new = table.set_index("name").loc["new"]
    assert new["tenure_days"] == pytest.approx(30, rel=0.1)


def test_pca_picture_has_two_axes_per_customer(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    model, features, _ = fitted
    picture = model.pca_2d(features)
    assert picture.shape == (len(features), 3)
    assert list(picture.columns) == ["pc1", "pc2", "segment"]
    assert picture.index.equals(features.index)
    ratio = picture.attrs["explained_variance_ratio"]
    assert len(ratio) == 2 and all(0 <= r <= 1 for r in ratio) and sum(ratio) <= 1 + 1e-9
    assert (picture["segment"] == model.predict(features)).all()


def test_unfitted_model_refuses() -> None:
    model = SegmentationModel()
    features, _ = _customers()
    for use in (model.predict, model.profiles, model.pca_2d):
        with pytest.raises(NotFittedError):
            use(features)
    with pytest.raises(NotFittedError):
        model.segment_names()


def test_new_customers_are_placed_with_their_kind(
    fitted: tuple[SegmentationModel, pd.DataFrame, pd.Series],
) -> None:
    # given customers the model never saw, one of each kind, as a customer_id column
    model, _, _ = fitted
    newcomers = pd.DataFrame([{"customer_id": f"N{i}", **m} for i, m in enumerate(GROUPS.values())])
    # when predicting
    segments = model.predict(newcomers)
    # then each lands in the segment named after its kind
    assert list(segments.index) == ["N0", "N1", "N2", "N3"]
    assert [model.names_[s] for s in segments] == list(GROUPS)


def test_same_data_same_segments() -> None:
    features, _ = _customers(seed=3)
    first = SegmentationModel(k_range=(2, 5), random_state=7).fit(features)
    second = SegmentationModel(k_range=(2, 5), random_state=7).fit(features)
    assert first.names_ == second.names_
    assert (first.predict(features) == second.predict(features)).all()
    assert first.silhouette_ == second.silhouette_


def test_missing_values_and_text_columns_are_handled() -> None:
    # given gaps in every column and a text column
    features, truth = _customers(seed=4)
    rng = np.random.default_rng(0)
    holes = features.mask(rng.random(features.shape) < 0.05)
    holes["country"] = "GB"
    # when fitting
    model = SegmentationModel(k_range=(3, 5)).fit(holes)
    # then every customer gets a segment, the text column is not a feature, the groups survive
    segments = model.predict(holes)
    assert segments.notna().all() and len(segments) == len(holes)
    assert "country" not in model.columns_
    # (a customer whose gaps took the medians may sit between groups: purity, not identity)
    purity = pd.crosstab(segments, truth).max(axis=1).sum() / len(truth)
    assert purity > 0.9
    assert model.k_ in (4, 5)


def test_large_tables_search_k_on_a_sample() -> None:
    # given more customers than the search sample
    features, truth = _customers(seed=5, per_group=150)
    # when the search and the silhouette use samples
    model = SegmentationModel(k_range=(2, 6), search_size=200, sample_size=100).fit(features)
    # then the same four groups come out, fitted on everyone
    assert model.k_ == 4
    assert (model.predict(features).map(model.names_) == truth).all()
    assert model.sizes_.sum() == len(features)


def test_refuses_impossible_settings() -> None:
    features, _ = _customers()
    with pytest.raises(ValueError, match="k_range"):
        SegmentationModel(k_range=(1, 3)).fit(features)
    with pytest.raises(ValueError, match="distinct customers"):
        SegmentationModel(k_range=(3, 4)).fit(features.iloc[:3])
    with pytest.raises(ValueError, match="numeric"):
        SegmentationModel().fit(pd.DataFrame({"country": ["GB", "FR", "DE"]}))


def test_columns_restrict_the_features() -> None:
    features, _ = _customers()
    model = SegmentationModel(k_range=(2, 4), columns=["recency_days", "frequency"]).fit(features)
    assert model.columns_ == ["recency_days", "frequency"]
    assert list(model.centers_.columns) == ["recency_days", "frequency"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), rows=st.integers(12, 80), columns=st.integers(1, 6))
def test_any_table_gets_unique_names_and_valid_segments(seed: int, rows: int, columns: int) -> None:
    # given any table of heavy-tailed numbers, some negative, some missing
    rng = np.random.default_rng(seed)
    data = rng.lognormal(0, 1.5, (rows, columns)) - rng.integers(0, 2, columns) * 2
    data[rng.random(data.shape) < 0.1] = np.nan
    names = ["recency_days", "frequency", "spend_total", "tenure_days", "ticket_share", "age"]
    features = pd.DataFrame(data, columns=names[:columns])
    if features.nunique().max() < 2:
        return
    model = SegmentationModel(k_range=(2, 5)).fit(features)
    segments = model.predict(features)
    # then names are unique, segments are 0..k-1, the silhouette is a silhouette
    assert len(set(model.names_.values())) == model.k_
    assert set(segments.unique()) <= set(range(model.k_))
    assert -1 <= model.silhouette_ <= 1
