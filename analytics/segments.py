"""Customer segments: groups of customers who behave alike, with names a marketer can use.

`SegmentationModel` follows the scikit-learn contract: `fit` on a table of customer features
(one row per customer, indexed by customer id, or with a `customer_id` column), then `predict`,
`profiles` and `pca_2d` on the same or another such table. Predicting before fitting raises
`sklearn.exceptions.NotFittedError`.

How a customer is placed, step by step:

1. **Columns.** Every numeric (or true/false) column is a feature (or those named in
   `columns=`); text columns are ignored, as are columns that are empty or hold a single value
   in the training table.
2. **Heavy tails.** Spend and counts are heavy-tailed (a few customers carry much of the revenue),
   so a column is taken as `log1p(x)` when it holds no negative value in the training table and
   either its name speaks of money or counts (`LOG_NAME_PATTERN`: spend, monetary, revenue,
   amount, value, price, total, clv, frequency, orders, count, lines, quantity, items, tickets,
   calls, interactions, visits, degree, ...) or its skewness exceeds `LOG_SKEW` (2). Later values
   below zero are read as zero.
3. **Gaps.** A missing value takes the column's median in the training table.
4. **Scale.** Each column is standardised (mean 0, standard deviation 1), so no unit dominates.
5. **Clusters.** KMeans runs for every k in `k_range` (both ends included, capped at the number
   of distinct customers less one); the k with the best silhouette wins (the smaller k on a tie).
   On large tables the search runs on a seeded sample of `search_size` customers and the
   silhouette on a seeded sub-sample of `sample_size` of them, the same for every k; the winning
   k is then refitted on all customers from the sample's centroids. The silhouette reported is
   the sample's.
6. **Segment ids** are renumbered by size: segment 0 is the largest.

Segment names come from the centroids, read in the scaled space (so +1 means "one standard
deviation above the average customer"). The columns that carry meaning are found by name
(`ROLE_PATTERNS`, or given explicitly with `roles=`): recency (days since the last order),
frequency (orders), spend (total spend), tenure (days since sign-up), ticket share (the share of
contacts that are support tickets) and average order value. Each candidate name has a strength
computed from those values:

| name                  | strength                                    | needs             |
|-----------------------|---------------------------------------------|-------------------|
| loyal high spenders   | min(spend, frequency) - max(recency, 0)     | spend, frequency  |
| at risk               | recency + 0.5 * max(ticket share, 0)        | recency           |
| support heavy         | ticket share                                | ticket share      |
| new                   | -tenure                                     | tenure            |
| bargain hunters       | min(frequency, -average order value)        | frequency, aov    |
| big-ticket buyers     | min(average order value, -frequency)        | frequency, aov    |
| occasional            | min(-frequency, -spend, tenure + 1)         | frequency         |
| regulars              | 0.8 * frequency                             | frequency         |
| high spenders         | 0.8 * spend                                 | spend             |

(a missing optional role counts as 0; "occasional" uses only the parts it has; the two names
that rest on a single column count 0.8 of it, so that a richer description wins when both fit).
A name fits a segment when its strength is at least `NAME_THRESHOLD` (half a standard
deviation); names are then matched to segments one to one so that the total strength is
largest (an assignment problem, solved exactly, hence unique and deterministic). A segment left
without a name is called "average customers" if every role value lies within half a standard
deviation of the average, otherwise after its most distinctive column ("high web_visits", "low
age"), with the segment id appended should that repeat a name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from crm_graph.analytics.frames import NotEnoughData

__all__ = ["LOG_NAME_PATTERN", "ROLE_PATTERNS", "SegmentationModel"]

LOG_NAME_PATTERN = re.compile(
    r"spend|monetary|revenue|amount|value|price|total|clv|frequency|orders|count|lines|quantity"
    r"|items|tickets|calls|interactions|contacts|visits|degree|^n_|_n$"
)
"""Column names that announce money or counts (searched in the lower-cased name)."""
LOG_SKEW = 2.0
"""A non-negative column this skewed is log-transformed whatever its name."""
NAME_THRESHOLD = 0.5
"""A segment earns a name when its strength reaches half a standard deviation."""
GENERIC_NAME_FACTOR = 0.8
"""Names resting on one column ("regulars", "high spenders") count this share of it."""

ROLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "recency": (r"^recency(_days)?$", r"days_since_last_order|since_last_order", r"recency"),
    "frequency": (r"^frequency$", r"^orders(_total|_count)?$",
                  r"order_count|orders_count|n_orders|num_orders"),
    "spend": (r"^(spend_total|total_spend|spend|revenue|total_revenue|monetary_total)$",
              r"^monetary$"),
    "avg_order_value": (r"avg_order|average_order|mean_order|order_value|aov|basket_value",
                        r"^monetary$"),
    "tenure": (r"^tenure(_days)?$", r"tenure|days_since_signup"),
    "ticket_share": (r"^ticket_share$", r"ticket.*share|share.*ticket"),
}  # fmt: skip
"""How each interpretable role is recognised in (lower-cased) column names: the patterns are
tried in turn, the first one matching a column not yet given to another role wins (in column
order). With `analytics.features` this finds recency_days, frequency, spend_total (spend),
monetary (its mean order value), tenure_days and ticket_share."""

_RULE_ORDER = ("loyal high spenders", "at risk", "support heavy", "new", "bargain hunters",
               "big-ticket buyers", "occasional", "regulars", "high spenders")  # fmt: skip


def _name_strengths(z: Mapping[str, float]) -> dict[str, float]:
    """The strength of every candidate name for one centroid (role -> scaled value); names whose
    roles are absent are left out. See the module docstring for the table."""
    has = z.__contains__
    get = z.get
    out: dict[str, float] = {}
    if has("spend") and has("frequency"):
        out["loyal high spenders"] = min(z["spend"], z["frequency"]) - max(get("recency", 0.0), 0.0)
    if has("recency"):
        out["at risk"] = z["recency"] + 0.5 * max(get("ticket_share", 0.0), 0.0)
    if has("ticket_share"):
        out["support heavy"] = z["ticket_share"]
    if has("tenure"):
        out["new"] = -z["tenure"]
    if has("frequency") and has("avg_order_value"):
        out["bargain hunters"] = min(z["frequency"], -z["avg_order_value"])
        out["big-ticket buyers"] = min(z["avg_order_value"], -z["frequency"])
    if has("frequency"):
        parts = [-z["frequency"]]
        if has("spend"):
            parts.append(-z["spend"])
        if has("tenure"):
            parts.append(z["tenure"] + 1.0)
        out["occasional"] = min(parts)
        out["regulars"] = GENERIC_NAME_FACTOR * z["frequency"]
    if has("spend"):
        out["high spenders"] = GENERIC_NAME_FACTOR * z["spend"]
    return out


def _customer_table(features: pd.DataFrame) -> pd.DataFrame:
    """The features indexed by customer: a `customer_id` column becomes the index."""
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"features must be a pandas DataFrame, got {type(features).__name__}")
    if "customer_id" in features.columns:
        features = features.set_index("customer_id")
    return features


class SegmentationModel(BaseEstimator):
    """Segments customers with KMeans on scaled features, k chosen by silhouette.

    Parameters
    ----------
    k_range: smallest and largest number of segments tried, both included.
    random_state: seed for KMeans, the silhouette sample and PCA.
    sample_size: at most this many customers are used to compute each silhouette.
    n_init: KMeans restarts per k.
    search_size: the choice of k is made on a seeded sample of at most this many customers; the
        chosen k is then refitted on every customer, starting from the sample's centroids.
    threads: native threads for KMeans and the distance computations (None: the libraries'
        default, one per core). One by default: on a busy shared machine, idle OpenMP threads
        spinning for a core made KMeans on 3,000 customers 14 times slower.
    columns: the features to segment on; None takes every numeric column.
    roles: role -> column for the naming rules (see `ROLE_PATTERNS`); roles not given are
        found by column name.
    log_columns: the columns to take as log1p; None decides as described in the module.

    Fitted attributes: `feature_names_in_`, `columns_` (the features used), `log_columns_`,
    `roles_`, `k_`, `silhouette_`, `silhouettes_` (k -> score), `centers_` (segment x column, in
    original units), `names_` (segment -> name), `sizes_`, `labels_` (training customers'
    segments), `explained_variance_ratio_` (of the 2-D picture).
    """

    def __init__(
        self,
        k_range: tuple[int, int] = (2, 8),
        random_state: int = 0,
        sample_size: int = 5_000,
        n_init: int = 3,
        search_size: int = 20_000,
        threads: int | None = 1,
        columns: Sequence[str] | None = None,
        roles: Mapping[str, str] | None = None,
        log_columns: Sequence[str] | None = None,
    ) -> None:
        self.k_range = k_range
        self.random_state = random_state
        self.sample_size = sample_size
        self.n_init = n_init
        self.search_size = search_size
        self.threads = threads
        self.columns = columns
        self.roles = roles
        self.log_columns = log_columns

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, features: pd.DataFrame, y: object = None) -> SegmentationModel:
        """Learn the scaling, the number of segments, the centroids and their names."""
        with threadpool_limits(limits=self.threads):
            return self._fit(_customer_table(features))

    def _fit(self, features: pd.DataFrame) -> SegmentationModel:
        low, high = (int(v) for v in self.k_range)
        if not 2 <= low <= high:
            raise ValueError(f"k_range must be (low, high) with 2 <= low <= high, got "
                             f"{self.k_range!r}")  # fmt: skip
        self.feature_names_in_ = np.asarray([str(c) for c in features.columns], dtype=object)
        if self.columns is not None:
            missing = [c for c in self.columns if c not in features.columns]
            if missing:
                raise ValueError(f"features lack the column(s) to segment on: {missing}")
            candidates = [c for c in features.columns if c in set(self.columns)]
        else:
            candidates = list(features.columns)
        raw = self._numeric(features, [c for c in candidates if _is_numeric(features[c])])
        informative = [c for c in raw.columns if raw[c].nunique(dropna=True) > 1]
        if not informative:
            raise NotEnoughData("features hold no numeric column with more than one value")
        raw = raw[informative]
        self.columns_ = list(informative)
        self.log_columns_ = self._choose_log_columns(raw)
        transformed = self._log(raw)
        self.imputer_ = SimpleImputer(strategy="median").fit(transformed)
        self.scaler_ = StandardScaler().fit(self.imputer_.transform(transformed))
        scaled = self.scaler_.transform(self.imputer_.transform(transformed))

        distinct = len(np.unique(scaled, axis=0)) if len(scaled) <= 10_000 else len(scaled)
        high = min(high, distinct - 1)
        if high < low:
            raise NotEnoughData(f"{distinct} distinct customers cannot make {low} segments")
        rng = np.random.default_rng(self.random_state)
        search = (np.sort(rng.choice(len(scaled), self.search_size, replace=False))
                  if len(scaled) > self.search_size else np.arange(len(scaled)))  # fmt: skip
        sample = (rng.choice(len(search), self.sample_size, replace=False)
                  if len(search) > self.sample_size else np.arange(len(search)))  # fmt: skip
        searched = scaled[search]
        best: tuple[float, int, KMeans] | None = None
        self.silhouettes_: dict[int, float] = {}
        for k in range(low, high + 1):
            kmeans = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
            labels = kmeans.fit_predict(searched)
            if len(np.unique(labels[sample])) < 2:
                continue
            score = float(silhouette_score(searched[sample], labels[sample]))
            self.silhouettes_[k] = score
            if best is None or score > best[0]:
                best = (score, k, kmeans)
        if best is None:
            raise NotEnoughData("no k in k_range gave two or more segments on these features")
        self.silhouette_, self.k_, kmeans = best
        if len(search) < len(scaled):
            kmeans = KMeans(n_clusters=self.k_, init=kmeans.cluster_centers_, n_init=1,
                            random_state=self.random_state).fit(scaled)  # fmt: skip
        self._relabel(kmeans, scaled)
        self.pca_ = PCA(n_components=min(2, scaled.shape[1]), random_state=self.random_state)
        self.pca_.fit(scaled)
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_.copy()
        self.roles_ = self._find_roles()
        self.names_ = self._name_segments()
        return self

    def _relabel(self, kmeans: KMeans, scaled: np.ndarray) -> None:
        """Renumber segments by size (largest first, then by centroid) and keep the centroids."""
        labels = kmeans.labels_
        sizes = np.bincount(labels, minlength=kmeans.n_clusters)
        centers = kmeans.cluster_centers_
        order = sorted(range(kmeans.n_clusters), key=lambda s: (-sizes[s], tuple(centers[s])))
        mapping = np.empty(kmeans.n_clusters, dtype=np.int64)
        mapping[order] = np.arange(kmeans.n_clusters)
        self.scaled_centers_ = centers[order]
        self.labels_ = mapping[labels]
        self.sizes_ = pd.Series(sizes[order], index=pd.RangeIndex(kmeans.n_clusters),
                                name="customers")  # fmt: skip
        frame = pd.DataFrame(self.scaler_.inverse_transform(self.scaled_centers_),
                             columns=self.columns_)  # fmt: skip
        for column in self.log_columns_:
            frame[column] = np.expm1(frame[column])
        frame.index.name = "segment"
        self.centers_ = frame
        self.kmeans_ = kmeans
        self.relabel_ = mapping

    def _choose_log_columns(self, raw: pd.DataFrame) -> list[str]:
        if self.log_columns is not None:
            unknown = [c for c in self.log_columns if c not in raw.columns]
            if unknown:
                raise ValueError(f"log_columns not among the numeric features: {unknown}")
            return [c for c in raw.columns if c in set(self.log_columns)]
        chosen = []
        for column in raw.columns:
            values = raw[column].dropna()
            if len(values) == 0 or values.min() < 0:
                continue
            named = LOG_NAME_PATTERN.search(str(column).lower()) is not None
            if named or float(values.skew()) > LOG_SKEW:
                chosen.append(column)
        return chosen

    def _find_roles(self) -> dict[str, str]:
        given = dict(self.roles or {})
        unknown = {r: c for r, c in given.items() if r not in ROLE_PATTERNS or c not in
                   self.columns_}  # fmt: skip
        if unknown:
            raise ValueError(f"roles must map {sorted(ROLE_PATTERNS)} to used feature columns; "
                             f"cannot use {unknown}")  # fmt: skip
        found = dict(given)
        names = [str(c).lower() for c in self.columns_]
        for role, patterns in ROLE_PATTERNS.items():
            if role in found:
                continue
            taken = set(found.values())
            for pattern in patterns:
                hits = [c for c, n in zip(self.columns_, names, strict=True)
                        if c not in taken and re.search(pattern, n)]  # fmt: skip
                if hits:
                    found[role] = hits[0]
                    break
        return found

    def _name_segments(self) -> dict[int, str]:
        """Match names to segments (see the module docstring)."""
        column_at = {c: i for i, c in enumerate(self.columns_)}
        k = len(self.scaled_centers_)
        role_z = [{role: float(self.scaled_centers_[s, column_at[c]])
                   for role, c in self.roles_.items()} for s in range(k)]  # fmt: skip
        strengths = [_name_strengths(z) for z in role_z]
        gain = np.zeros((k, len(_RULE_ORDER)))
        for s, table in enumerate(strengths):
            for j, name in enumerate(_RULE_ORDER):
                value = table.get(name, -np.inf)
                gain[s, j] = value if value >= NAME_THRESHOLD else 0.0
        rows, cols = linear_sum_assignment(-gain)
        names: dict[int, str] = {int(s): _RULE_ORDER[j] for s, j in zip(rows, cols, strict=True)
                                 if gain[s, j] > 0}  # fmt: skip
        leftovers = [s for s in range(k) if s not in names]
        central = [s for s in leftovers
                   if all(abs(v) < NAME_THRESHOLD for v in role_z[s].values())]  # fmt: skip
        if central:
            closest = min(central, key=lambda s: (max(map(abs, role_z[s].values()), default=0), s))
            names[closest] = "average customers"
        for s in leftovers:
            if s in names:
                continue
            j = int(np.argmax(np.abs(self.scaled_centers_[s])))
            side = "high" if self.scaled_centers_[s, j] > 0 else "low"
            name = f"{side} {self.columns_[j]}"
            names[s] = name if name not in names.values() else f"{name} ({s})"
        return dict(sorted(names.items()))

    # --- using the fitted model ------------------------------------------------------------

    def _scaled(self, features: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
        check_is_fitted(self, "centers_")
        features = _customer_table(features)
        missing = [c for c in self.columns_ if c not in features.columns]
        if missing:
            raise ValueError(f"features lack column(s) the model was fitted on: {missing}")
        raw = self._numeric(features, self.columns_)
        transformed = self._log(raw)
        return features.index, self.scaler_.transform(self.imputer_.transform(transformed))

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Each customer's segment id (0 is the largest segment of the training table)."""
        index, scaled = self._scaled(features)
        with threadpool_limits(limits=self.threads):
            labels = self.relabel_[self.kmeans_.predict(scaled)] if len(scaled) else []
        return pd.Series(labels, index=index, name="segment", dtype="int64")

    def fit_predict(self, features: pd.DataFrame, y: object = None) -> pd.Series:
        """Fit, then give the training customers' segments."""
        return self.fit(features).predict(features)

    def segment_names(self) -> pd.Series:
        """Segment id -> name."""
        check_is_fitted(self, "names_")
        return pd.Series(self.names_, name="name").rename_axis("segment")

    def profiles(self, features: pd.DataFrame, columns: Sequence[str] | None = None
                 ) -> pd.DataFrame:  # fmt: skip
        """Per segment: name, customers, share of customers and the mean of the key columns (the
        role columns found, or `columns`), in original units."""
        check_is_fitted(self, "names_")
        features = _customer_table(features)
        segment = self.predict(features)
        keys = list(columns) if columns is not None else list(dict.fromkeys(self.roles_.values()))
        means = (self._numeric(features, keys).groupby(segment.to_numpy()).mean()
                 if keys else pd.DataFrame(index=pd.Index(sorted(segment.unique()))))  # fmt: skip
        sizes = segment.value_counts().reindex(range(self.k_), fill_value=0)
        table = pd.DataFrame({
            "name": pd.Series(self.names_),
            "customers": sizes,
            "share": sizes / max(len(segment), 1),
        }).join(means.reindex(range(self.k_)))  # fmt: skip
        table.index.name = "segment"
        return table

    def pca_2d(self, features: pd.DataFrame) -> pd.DataFrame:
        """The 2-D picture: each customer's first two principal components of the scaled features,
        with their segment. `attrs["explained_variance_ratio"]` holds the share of variance each
        axis explains (also `explained_variance_ratio_`)."""
        index, scaled = self._scaled(features)
        coords = self.pca_.transform(scaled)
        if coords.shape[1] < 2:
            coords = np.column_stack([coords, np.zeros(len(coords))])
        frame = pd.DataFrame({"pc1": coords[:, 0], "pc2": coords[:, 1]}, index=index)
        frame["segment"] = self.predict(features).to_numpy()
        frame.attrs["explained_variance_ratio"] = tuple(
            float(v) for v in self.explained_variance_ratio_
        )
        return frame

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _numeric(features: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        """The columns as float64, infinities read as missing."""
        data = {c: pd.to_numeric(features[c], errors="coerce").to_numpy(dtype="float64",
                                                                        na_value=np.nan)
                for c in columns}  # fmt: skip
        frame = pd.DataFrame(data, index=features.index, columns=list(columns))
        return frame.replace([np.inf, -np.inf], np.nan)

    def _log(self, raw: pd.DataFrame) -> pd.DataFrame:
        """log1p of the `log_columns_` (clipped at 0), the rest as they are; one array, not a
        column assignment each (ninety columns of 100k customers: 2 s)."""
        values = raw.to_numpy(dtype="float64", copy=True)
        chosen = [raw.columns.get_loc(c) for c in self.log_columns_]
        values[:, chosen] = np.log1p(np.clip(values[:, chosen], 0, None))
        return pd.DataFrame(values, index=raw.index, columns=raw.columns)


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
