"""Product recommendations: what each customer is likely to buy next, with the reasons why.

`Recommender` is fitted on the order lines placed before an explicit `as_of`, the social ties
and, optionally, each customer's segment. It scores every item for a customer by blending
signals, each scaled so that the customer's best item on that signal scores 1:

| signal               | an item scores high when ...                                 | weight |
|----------------------|--------------------------------------------------------------|--------|
| `rules`              | an association rule (FP-growth, same-order baskets) leads to | 0.10   |
|                      | it from items the customer bought (its best confidence)      |        |
| `similar_items`      | customers who bought the customer's items also bought it     | 0.05   |
|                      | (cosine similarity of buyers, summed over the customer's     |        |
|                      | items, `neighbours` best neighbours per item)                |        |
| `segment`            | many customers of the customer's segment bought it           | 0.05   |
| `friends`            | the customer's friends bought it (share of tie weight)       | 0.05   |
| `own_categories`     | it is popular in the categories the customer buys from       | 0.40   |
|                      | (the customer's share of lines in its category x its share   |        |
|                      | of that category's buyers)                                   |        |
| `friends_categories` | the same, with the friends' category mix                     | 0.25   |
| `popular`            | many customers bought it                                     | 0.10   |

(a) `rules`, (b) `similar_items` and `segment`, (c) `friends` and `friends_categories` are the
three families; the category signals need a category column with item_col "product_id" and
`segment` needs segment labels; a missing signal simply adds nothing. The weights were chosen by a
small random search on a generated business (3,000 customers, seed 7, `as_of` 2024-07-01, three
months held out: hit rate@10 0.444 against 0.324 for popularity) and checked on another (seed
11, `as_of` 2024-10-01: 0.479 against 0.372); pass `weights=` to change them.

A customer with no purchase before `as_of` gets the items their friends bought, ranked by the
share of friends who bought each, then every other item ranked by the `segment` and `popular`
signals blended with their weights. Ties are broken by popularity (number of buyers), then by
item id, so the same inputs always give the same list. Items bought before `as_of` are never
recommended to the customer who bought them when `exclude_owned=True`.

`evaluate` measures the recommendations on the orders of a held-out period after `as_of`,
beside a popularity baseline (the most-bought items the customer does not own yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crm_graph.analytics.frames import TIES, require, utc
from crm_graph.analytics.rules import rules as mine_rules

__all__ = ["DEFAULT_WEIGHTS", "SIGNALS", "RecommendationEvaluation", "Recommender"]

SIGNALS = ("rules", "similar_items", "segment", "friends", "own_categories",
           "friends_categories", "popular")  # fmt: skip
DEFAULT_WEIGHTS: dict[str, float] = {
    "rules": 0.10, "similar_items": 0.05, "segment": 0.05, "friends": 0.05,
    "own_categories": 0.40, "friends_categories": 0.25, "popular": 0.10,
}  # fmt: skip
"""How much each signal counts (see the module docstring); they sum to 1."""
_CELLS_PER_BATCH = 2_000_000  # customers x items scored at once
_DENSE_SIMILARITY_ITEMS = 3_000  # up to this many items, similarities also kept dense
_PAIRS_PER_BLOCK = 5_000_000  # item pairs counted at once when fitting the similarities
_TOP_PER_GROUP = 100  # most popular items of each category (and segment) always scored
_CHUNK = 4_096  # customers whose sparse signals are computed together


@dataclass(frozen=True)
class RecommendationEvaluation:
    """Recommendations against what customers bought in a held-out period, and the same for the
    popularity baseline.

    Only customers who bought at least one item they did not own before `as_of` are counted
    (`customers` of them): those are the purchases a recommender that leaves owned items out can
    hit. Per customer, with the `first` items recommended: hits = recommended items bought in the
    period; precision@k = hits / first; recall@k = hits / items newly bought; hit rate = share of
    customers with at least one hit. Figures are means over customers.
    """

    customers: int
    first: int
    hit_rate: float
    precision: float
    recall: float
    baseline_hit_rate: float
    baseline_precision: float
    baseline_recall: float

    @property
    def hit_rate_lift(self) -> float:
        """Hit rate relative to the baseline's."""
        return self.hit_rate / self.baseline_hit_rate if self.baseline_hit_rate else float("nan")


class Recommender(BaseEstimator):
    """Blends association rules, similar customers and friends into a ranked list per customer.

    Parameters
    ----------
    item_col: what is recommended: "product_id" (default) or "category".
    category_col: the lines' category column, for the category signals (None: unused).
    weights: signal -> weight, merged over `DEFAULT_WEIGHTS`.
    min_support, min_confidence, max_len: for the association rules (see `analytics.rules`).
    neighbours: similar items kept per item.
    similarity_history: items of one customer's history counted when fitting the item
        similarities: a customer who bought more counts with their `similarity_history` most
        recent items (None: all). A customer's co-purchases grow with the square of their history
        (5,337 ratings are 28M item pairs), and a heavy rater's pairs say little about any one
        pair; item-kNN implementations sample such users down the same way (Mahout's
        ItemSimilarityJob keeps 500 preferences per user). Only the similarities use the cut
        history: scoring, exclusion of owned items and every other signal use all of it.

    Fitted attributes: `as_of_`, `items_` (the items, sorted), `customers_`, `popularity_`
    (buyers per item), `rules_` (the rule table), `weights_`.
    """

    def __init__(
        self,
        item_col: str = "product_id",
        category_col: str | None = "category",
        weights: Mapping[str, float] | None = None,
        min_support: float = 0.0005,
        min_confidence: float = 0.05,
        max_len: int = 3,
        neighbours: int = 50,
        similarity_history: int | None = 500,
    ) -> None:
        self.item_col = item_col
        self.category_col = category_col
        self.weights = weights
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.max_len = max_len
        self.neighbours = neighbours
        self.similarity_history = similarity_history

    # --- fitting ---------------------------------------------------------------------------

    def fit(
        self,
        lines: pd.DataFrame,
        ties: pd.DataFrame | None = None,
        *,
        as_of: pd.Timestamp,
        segments: pd.Series | None = None,
        rules: pd.DataFrame | None = None,
    ) -> Recommender:
        """Learn from the lines placed before `as_of`, the ties (TIES columns; weight missing
        counts as 1) and the segments (customer id -> segment label). `rules`: the rules the
        recommender would mine, already mined by the caller (`analytics.rules.rules` of the same
        lines and `as_of` with this recommender's `min_support`, `min_confidence`, `max_len` and
        `item_col`), so that they are not mined twice."""
        weights = {**DEFAULT_WEIGHTS, **(self.weights or {})}
        unknown = sorted(set(weights) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; signals are {list(SIGNALS)}")
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"weights must not be negative, got {weights}")
        require(lines, ("customer_id", "transaction_id", "at", self.item_col), "LINES")
        if ties is not None:
            require(ties, TIES[:2], "TIES")
        self.as_of_ = utc(as_of)
        past = lines.loc[(lines["at"] < self.as_of_) & lines[self.item_col].notna()
                         & lines["customer_id"].notna()]  # fmt: skip
        past = past.assign(**{self.item_col: past[self.item_col].astype(str)})
        use_categories = (self.category_col is not None and self.item_col != self.category_col
                          and self.category_col in past.columns)  # fmt: skip

        self.items_ = pd.Index(sorted(past[self.item_col].unique()), name=self.item_col)
        known = [past["customer_id"]]
        if ties is not None:
            known += [ties["source"], ties["target"]]
        if segments is not None:
            known.append(pd.Series(segments.index))
        self.customers_ = pd.Index(pd.unique(pd.concat(known, ignore_index=True).dropna()),
                                   name="customer_id")  # fmt: skip
        n_customers, n_items = len(self.customers_), len(self.items_)

        rows = self.customers_.get_indexer(past["customer_id"])
        cols = self.items_.get_indexer(past[self.item_col])
        owned = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                              shape=(n_customers, n_items))  # fmt: skip
        owned.sum_duplicates()
        owned.data[:] = 1.0
        self._owned = owned
        self._owned_csc = owned.tocsc()
        self.popularity_ = pd.Series(np.asarray(owned.sum(axis=0)).ravel().astype(np.int64),
                                     index=self.items_, name="buyers")  # fmt: skip
        popularity = self.popularity_.to_numpy()
        self._buyers = popularity.tolist()
        self._item_names = self.items_.tolist()
        # columns in tie-break order: most buyers first, then item id
        self._tie_order = np.lexsort((np.arange(n_items), -popularity))
        self._popular = (popularity / max(int(popularity.max(initial=0)), 1)).astype(np.float32)

        self._fit_similarity(self._recent_history(owned, rows, cols, past["at"]))
        self._fit_rules(lines, rules)
        self._fit_friends(ties, n_customers)
        self._fit_segments(segments, owned)
        self._fit_categories(past if use_categories else None, rows)
        self._fit_candidates()
        available = {
            "rules": len(self._rule_groups) > 0, "similar_items": True,
            "segment": self._segment_share is not None, "friends": self._friends.nnz > 0,
            "own_categories": self._item_category is not None,
            "friends_categories": self._item_category is not None and self._friends.nnz > 0,
            "popular": True,
        }  # fmt: skip
        self.weights_ = {s: float(weights[s]) if available[s] else 0.0 for s in SIGNALS}
        return self

    def _recent_history(self, owned: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray,
                        at: pd.Series) -> sp.csr_matrix:  # fmt: skip
        """`owned` with each customer's history cut to their `similarity_history` most recently
        bought items (an item counts at its last purchase; ties: the smaller item index)."""
        cap = self.similarity_history
        if cap is None or len(rows) == 0 or int(np.diff(owned.indptr).max()) <= cap:
            return owned
        when = at.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        last = (pd.DataFrame({"row": rows, "col": cols, "when": when})
                .groupby(["row", "col"], sort=False)["when"].max().reset_index())  # fmt: skip
        row, col, when = (last[c].to_numpy() for c in ("row", "col", "when"))
        order = np.lexsort((col, -when, row))
        row, col = row[order], col[order]
        starts = np.searchsorted(row, row, side="left")
        keep = np.arange(len(row)) - starts < cap
        recent = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                                (row[keep], col[keep])), shape=owned.shape)  # fmt: skip
        return recent

    def _fit_similarity(self, owned: sp.csr_matrix) -> None:
        """Cosine similarity between items over their buyers, best `neighbours` per item.

        Computed for a block of items at a time (their rows against every item), each block cut
        to its best neighbours before the next is made: all at once, the co-purchases of the
        Epinions sample (7,000 customers, 139k products, one customer with 5,337) were ~120M
        pairs, gigabytes before the cut."""
        n_items = owned.shape[1]
        norms = np.sqrt(np.asarray(owned.sum(axis=0)).ravel())
        inverse = 1.0 / np.where(norms > 0, norms, 1.0)
        by_item = owned.T.tocsr()
        # the pairs an item's row can hold: what its buyers bought
        pairs = by_item @ np.diff(owned.indptr).astype(np.float64)
        cumulative = np.concatenate([[0.0], np.cumsum(pairs)])
        blocks, start = [], 0
        while start < n_items:
            stop = int(np.searchsorted(cumulative, cumulative[start] + _PAIRS_PER_BLOCK,
                                       side="right")) - 1  # fmt: skip
            stop = min(max(stop, start + 1), n_items)
            co = (by_item[start:stop] @ owned).tocsr().astype(np.float64)
            co.sort_indices()
            row = np.repeat(np.arange(stop - start), np.diff(co.indptr))
            off_diagonal = co.indices != row + start
            co = sp.csr_matrix(
                ((inverse[row + start] * co.data * inverse[co.indices])[off_diagonal],
                 (row[off_diagonal], co.indices[off_diagonal])),
                shape=(stop - start, n_items),
            )  # fmt: skip
            if self.neighbours is not None:
                co = _keep_top_per_row(co, int(self.neighbours))
            blocks.append(co.astype(np.float32))
            start = stop
        self._similarity = (sp.vstack(blocks).tocsr() if blocks
                            else sp.csr_matrix((0, 0), dtype=np.float32))  # fmt: skip
        small = self._similarity.shape[0] <= _DENSE_SIMILARITY_ITEMS
        self._similarity_dense = self._similarity.toarray() if small else None

    def _fit_rules(self, lines: pd.DataFrame, mined: pd.DataFrame | None) -> None:
        self.rules_ = mined if mined is not None else mine_rules(
            lines, self.as_of_, min_support=self.min_support, min_confidence=self.min_confidence,
            max_len=self.max_len, item_col=self.item_col,
        )  # fmt: skip
        groups: dict[tuple[int, ...], list[tuple[int, float, int]]] = {}
        index_of = {item: j for j, item in enumerate(self.items_)}
        for number, (antecedent, consequent, confidence) in enumerate(zip(
                self.rules_["antecedents"], self.rules_["consequents"],
                self.rules_["confidence"], strict=True)):  # fmt: skip
            key = tuple(index_of[i] for i in antecedent)
            for item in consequent:
                groups.setdefault(key, []).append((index_of[item], float(confidence), number))
        self._rule_text = [
            (", ".join(a), float(c))
            for a, c in zip(self.rules_["antecedents"], self.rules_["confidence"], strict=True)
        ]
        self._rule_groups = [
            (np.asarray(key, dtype=np.int64), np.asarray([c[0] for c in cons], dtype=np.int64),
             np.asarray([c[1] for c in cons], dtype=np.float32),
             np.asarray([c[2] for c in cons], dtype=np.int64))
            for key, cons in groups.items()
        ]  # fmt: skip

    def _fit_friends(self, ties: pd.DataFrame | None, n_customers: int) -> None:
        """Undirected weighted adjacency (both directions of a tie add up; no self ties)."""
        if ties is None or ties.empty:
            self._friends = sp.csr_matrix((n_customers, n_customers), dtype=np.float32)
            return
        source = self.customers_.get_indexer(ties["source"])
        target = self.customers_.get_indexer(ties["target"])
        weight = (pd.to_numeric(ties["weight"], errors="coerce").fillna(1.0).to_numpy()
                  if "weight" in ties.columns else np.ones(len(ties)))  # fmt: skip
        keep = (source >= 0) & (target >= 0) & (source != target) & (weight > 0)
        source, target, weight = source[keep], target[keep], weight[keep]
        adjacency = sp.csr_matrix(
            (np.concatenate([weight, weight]).astype(np.float32),
             (np.concatenate([source, target]), np.concatenate([target, source]))),
            shape=(n_customers, n_customers),
        )  # fmt: skip
        adjacency.sum_duplicates()
        self._friends = adjacency
        self._friend_weight = np.asarray(adjacency.sum(axis=1)).ravel()

    def _fit_segments(self, segments: pd.Series | None, owned: sp.csr_matrix) -> None:
        self._segment_share = None
        self._segment_of = np.full(len(self.customers_), -1, dtype=np.int64)
        self._segment_labels: list[object] = []
        if segments is None:
            return
        labels = segments.dropna()
        self._segment_labels = sorted(pd.unique(labels), key=lambda v: (str(type(v)), v))
        label_at = {label: j for j, label in enumerate(self._segment_labels)}
        rows = self.customers_.get_indexer(labels.index)
        self._segment_of[rows] = [label_at[v] for v in labels.to_numpy()]
        members = self._segment_of >= 0
        membership = sp.csr_matrix(
            (np.ones(int(members.sum()), dtype=np.float32),
             (self._segment_of[members], np.flatnonzero(members))),
            shape=(len(self._segment_labels), len(self.customers_)),
        )  # fmt: skip
        sizes = np.asarray(membership.sum(axis=1)).ravel()
        share = (membership @ owned).toarray() / np.maximum(sizes, 1)[:, None]
        self._segment_share = share.astype(np.float32)

    def _fit_categories(self, past: pd.DataFrame | None, rows: np.ndarray) -> None:
        """Each item's category, each customer's lines per category, and each item's share of
        its category's buyers."""
        self._item_category: np.ndarray | None = None
        if past is None:
            return
        category_col = str(self.category_col)
        labelled = past[category_col].notna().to_numpy()
        if not labelled.any():
            return
        cats = past.loc[labelled, [self.item_col, category_col]].astype(str)
        modal = (cats.groupby([self.item_col, category_col]).size().rename("n").reset_index()
                 .sort_values(["n", category_col], ascending=[False, True])
                 .drop_duplicates(self.item_col))  # fmt: skip
        self._categories = pd.Index(sorted(modal[category_col].unique()))
        self._category_names = self._categories.tolist()
        item_category = np.full(len(self.items_), -1, dtype=np.int64)
        item_category[self.items_.get_indexer(modal[self.item_col])] = self._categories.get_indexer(
            modal[category_col]
        )
        self._item_category = item_category
        counts = sp.csr_matrix(
            (np.ones(int(labelled.sum()), dtype=np.float32),
             (rows[labelled], self._categories.get_indexer(cats[category_col]))),
            shape=(len(self.customers_), len(self._categories)),
        )  # fmt: skip
        counts.sum_duplicates()
        self._category_lines = counts
        popularity = self.popularity_.to_numpy().astype(np.float64)
        has = item_category >= 0
        per_category = np.bincount(item_category[has], weights=popularity[has],
                                   minlength=len(self._categories))  # fmt: skip
        self._category_buyers = per_category
        within = np.zeros(len(self.items_))
        within[has] = popularity[has] / np.maximum(per_category[item_category[has]], 1)
        self._within_category = within.astype(np.float32)

    def _fit_candidates(self) -> None:
        """What lets a batch of customers be scored on a few candidate items instead of the whole
        catalogue (see `_scored`): the items always among the candidates (the `_TOP_PER_GROUP`
        most popular of each category, items without one being a group too, and the most bought
        by each segment), and, for every item outside them, the most it can have of each signal
        spread over the whole catalogue (`popular`, `segment`, the category signals)."""
        n_items = len(self.items_)
        popularity = self.popularity_.to_numpy()
        if self._item_category is not None:
            n_categories = len(self._categories)
            group = np.where(self._item_category >= 0, self._item_category, n_categories)
        else:
            n_categories = 0
            group = np.zeros(n_items, dtype=np.int64)
        n_groups = n_categories + 1
        in_tie_order = group[self._tie_order]
        order = np.argsort(in_tie_order, kind="stable")
        starts = np.searchsorted(in_tie_order[order], np.arange(n_groups))
        rank = np.empty(n_items, dtype=np.int64)
        rank[order] = np.arange(n_items) - starts[in_tie_order[order]]
        always = [self._tie_order[rank < _TOP_PER_GROUP]]
        # the tie order is by buyers: the first item of a group past the top has the most left
        next_buyers = np.zeros(n_groups)
        past_top = rank == _TOP_PER_GROUP
        next_buyers[in_tie_order[past_top]] = popularity[self._tie_order[past_top]]
        most = max(int(popularity.max(initial=0)), 1)
        self._next_popular = (next_buyers / most).astype(np.float32)
        self._next_within = np.zeros(n_groups, dtype=np.float32)
        if self._item_category is not None:
            self._next_within[:n_categories] = next_buyers[:n_categories] / np.maximum(
                self._category_buyers, 1
            )
            has = self._item_category >= 0
            top_within = np.zeros(n_categories, dtype=np.float32)
            np.maximum.at(top_within, self._item_category[has], self._within_category[has])
            self._top_within = top_within
        self._next_share = np.zeros(0, dtype=np.float32)
        if self._segment_share is not None:
            share = self._segment_share
            self._segment_top = share.max(axis=1, initial=0.0)
            if n_items > _TOP_PER_GROUP:
                parted = np.argpartition(-share, _TOP_PER_GROUP, axis=1)
                always.append(parted[:, :_TOP_PER_GROUP].ravel())
                after = parted[:, _TOP_PER_GROUP : _TOP_PER_GROUP + 1]
                self._next_share = np.take_along_axis(share, after, axis=1).ravel()
            else:
                self._next_share = np.zeros(len(share), dtype=np.float32)
        self._always = np.unique(np.concatenate(always)).astype(np.int64)

    # --- recommending ----------------------------------------------------------------------

    def recommend(
        self, customer_ids: Iterable[object], first: int = 10, exclude_owned: bool = True
    ) -> pd.DataFrame:
        """The `first` best items for each customer, best first: columns customer_id, the item
        column, rank (1 = best), score and reasons (a list of up to three sentences naming the
        strongest signals behind the item, strongest first). Customers unknown to the model get
        the most popular items."""
        check_is_fitted(self, "weights_")
        if first < 1:
            raise ValueError(f"first must be at least 1, got {first}")
        return self._ranked(list(dict.fromkeys(customer_ids)), first, exclude_owned, explain=True)

    def _ranked(self, wanted: list[object], first: int, exclude_owned: bool, explain: bool
                ) -> pd.DataFrame:  # fmt: skip
        """`recommend` for distinct customers, in batches; reasons only when `explain`."""
        frames = [self._empty_output()]
        if len(self.items_) == 0:
            return frames[0]
        ids = np.asarray(wanted, dtype=object)
        places = []
        for batch in self._scored(self.customers_.get_indexer(ids), first, exclude_owned,
                                  explain):  # fmt: skip
            valid = np.isfinite(batch.scores)  # owned items sort last: valid picks lead a row
            who, position = np.nonzero(valid)
            reasons: list[list[str]] = [[] for _ in range(len(who))]
            if batch.reasons is not None:
                reasons = [batch.reasons[b][r] for b, r in zip(who.tolist(), position.tolist(),
                                                               strict=True)]  # fmt: skip
            frames.append(pd.DataFrame({
                "customer_id": ids[batch.at[who]],
                self.item_col: np.asarray(self._item_names, dtype=object)[batch.items[valid]],
                "rank": (position + 1).astype(np.int64),
                "score": batch.scores[valid].astype(np.float64),
                "reasons": reasons,
            }))  # fmt: skip
            places.append(batch.at[who])
        table = pd.concat(frames, ignore_index=True)
        if not places:
            return table
        # batches go by the customers' candidates: back to the order asked for, best first
        order = np.lexsort((table["rank"].to_numpy(), np.concatenate(places)))
        return table.iloc[order].reset_index(drop=True)

    def _empty_output(self) -> pd.DataFrame:
        return pd.DataFrame({
            "customer_id": pd.Series(dtype=object), self.item_col: pd.Series(dtype=object),
            "rank": pd.Series(dtype="int64"), "score": pd.Series(dtype="float64"),
            "reasons": pd.Series(dtype=object),
        })  # fmt: skip

    def _sparse_rows(self, matrix: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
        """The rows of a customers x ... matrix, an empty row for unknown customers."""
        picker = sp.csr_matrix(
            (np.ones(int((rows >= 0).sum()), dtype=np.float32),
             (np.flatnonzero(rows >= 0), rows[rows >= 0])),
            shape=(len(rows), matrix.shape[0]),
        )  # fmt: skip
        return (picker @ matrix).tocsr()

    def _scored(self, rows: np.ndarray, first: int, exclude_owned: bool, explain: bool
                ) -> Iterator[_Picks]:  # fmt: skip
        """The `first` best items of the customers at `rows` (-1: unknown), a batch at a time.

        A batch is scored on its candidate items only: what any of its customers owns, what the
        rules, similar items or friends give them (the signals that are zero almost everywhere),
        and the items always among the candidates (`_fit_candidates`). Every other item scores
        at most a bound made of the most that item can have of the signals spread over the
        catalogue; a customer whose `first`-th pick scores above that bound has exactly the
        list the whole catalogue gives, and any other is scored again on the whole catalogue.
        So the cost follows the customers' histories, not the catalogue's size."""
        n_items = len(self.items_)
        take = min(first, n_items)
        few = 2 * len(self._always) >= n_items  # a small catalogue: every item, every time
        whole = max(1, _CELLS_PER_BATCH // n_items)
        for chunk_start in range(0, len(rows), _CHUNK):
            chunk = rows[chunk_start : chunk_start + _CHUNK]
            pieces = self._pieces(chunk, with_support=not few)
            again: list[np.ndarray] = []
            if few:
                again.append(np.arange(len(chunk)))
            else:
                support = pieces["support"]
                sizes = np.diff(support.indptr)
                for batch in _batches(np.argsort(sizes, kind="stable"), sizes,
                                      len(self._always), n_items):  # fmt: skip
                    chosen = np.zeros(n_items, dtype=bool)
                    chosen[self._always] = True
                    chosen[support[batch].indices] = True
                    columns = self._tie_order[chosen[self._tie_order]]
                    picks = self._score(chunk, batch, columns, pieces, take, exclude_owned,
                                        explain, certify=len(columns) < n_items)  # fmt: skip
                    sure = picks.certain
                    yield picks.subset(sure, chunk_start + batch[sure])
                    again.append(batch[~sure])
            rest = np.concatenate(again) if again else np.zeros(0, dtype=np.int64)
            for start in range(0, len(rest), whole):
                batch = rest[start : start + whole]
                picks = self._score(chunk, batch, self._tie_order, pieces, take, exclude_owned,
                                    explain, certify=False)  # fmt: skip
                yield picks.subset(np.ones(len(batch), dtype=bool), chunk_start + batch)

    def _pieces(self, rows: np.ndarray, with_support: bool) -> dict[str, sp.csr_matrix]:
        """The sparse signals of the customers at `rows` over every item: what they own, their
        similar items, their friends (customers x customers) and what those bought, the rules'
        best confidence and rule number + 1, and the support of all these (every item one of
        these signals, or ownership, gives the customer; only `with_support`)."""
        n, n_items = len(rows), len(self.items_)
        owned = self._sparse_rows(self._owned, rows)
        similar = (owned @ self._similarity).tocsr()
        friends = self._sparse_rows(self._friends, rows)
        bought = (friends @ self._owned).tocsr()
        confidence = sp.csr_matrix((n, n_items), dtype=np.float32)
        number = sp.csr_matrix((n, n_items), dtype=np.float32)
        if self.weights_["rules"] > 0:
            owned_csc = owned.tocsc()
            who, what, how, which, seen = [], [], [], [], 0
            for antecedent, consequents, rule_confidence, numbers in self._rule_groups:
                fires = np.flatnonzero(np.diff(owned_csc[:, antecedent].tocsr().indptr)
                                       == len(antecedent))  # fmt: skip
                if len(fires):
                    who.append(np.repeat(fires, len(consequents)))
                    what.append(np.tile(consequents, len(fires)))
                    how.append(np.tile(rule_confidence, len(fires)))
                    which.append(np.tile(numbers, len(fires)))
                    # the first rule of the best confidence wins, as rules are looked at in turn
                    order = seen + np.arange(len(consequents))
                    which[-1] = np.stack([which[-1], np.tile(order, len(fires))])
                seen += len(consequents)
            if who:
                row, column = np.concatenate(who), np.concatenate(what)
                value = np.concatenate(how)
                rule_number, turn = np.concatenate(which, axis=1)
                order = np.lexsort((turn, -value, column, row))
                row, column = row[order], column[order]
                first = np.ones(len(order), dtype=bool)
                first[1:] = (row[1:] != row[:-1]) | (column[1:] != column[:-1])
                best = order[first]
                confidence = sp.csr_matrix((value[best], (row[first], column[first])),
                                           shape=(n, n_items))  # fmt: skip
                number = sp.csr_matrix(
                    ((rule_number[best] + 1).astype(np.float32), (row[first], column[first])),
                    shape=(n, n_items))  # fmt: skip
        pieces = {"owned": owned, "similar": similar, "friends": friends, "bought": bought,
                  "confidence": confidence, "number": number}  # fmt: skip
        if with_support:
            support = (abs(owned) + abs(similar) + abs(bought) + abs(confidence)).tocsr()
            support.sort_indices()
            pieces["support"] = support
        return pieces

    def _score(
        self, chunk: np.ndarray, batch: np.ndarray, columns: np.ndarray,
        pieces: dict[str, sp.csr_matrix], take: int, exclude_owned: bool, explain: bool,
        certify: bool,
    ) -> _Picks:  # fmt: skip
        """The customers at `chunk[batch]` scored on the items `columns` (in tie order); with
        `certify`, which of them are sure to have the picks of the whole catalogue."""
        rows = chunk[batch]
        mine = {name: matrix[batch] for name, matrix in pieces.items()}
        signals, tops, best_rule, ceilings = self._signals(rows, columns, mine)
        scores = self._blend(rows, signals, tops)
        owned = mine["owned"][:, columns].toarray()
        if exclude_owned:
            scores[owned > 0] = -np.inf
        positions = _top_per_row(scores, min(take, len(columns)))
        top_scores = np.take_along_axis(scores, positions, axis=1)
        certain = np.ones(len(rows), dtype=bool)
        if certify:
            if positions.shape[1] < take:
                certain[:] = False
            else:
                bound = self._bound(rows, tops, ceilings)
                kth = top_scores[:, take - 1]
                certain = np.isfinite(kth) & (kth > bound * (1 + 1e-6) + 1e-12)
        items = columns[positions]
        reasons: list[list[list[str]]] | None = None
        if explain and certain.any():
            keep = np.flatnonzero(certain)
            said = self._reasons(
                rows[keep], positions[keep], items[keep],
                {name: values[keep] for name, values in signals.items()},
                {name: values[keep] for name, values in tops.items()}, best_rule[keep],
            )  # fmt: skip
            reasons = [[] for _ in range(len(rows))]
            for at, lists in zip(keep.tolist(), said, strict=True):
                reasons[at] = lists
        return _Picks(np.zeros(0, dtype=np.int64), items, top_scores, reasons, certain)

    def _signals(
        self, rows: np.ndarray, columns: np.ndarray, pieces: dict[str, sp.csr_matrix]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        """Each signal for the customers at `rows` on the items `columns`, (customers x columns),
        before scaling; each signal's largest value over the whole catalogue per customer (what
        scales it); the rule behind each `rules` score (-1: none); and, per customer and item
        group (see `_fit_candidates`), the most the catalogue-wide signals can give an item left
        out of `_fit_candidates`' picks."""
        n = len(rows)
        out: dict[str, np.ndarray] = {}
        tops: dict[str, np.ndarray] = {}
        ceilings: dict[str, np.ndarray] = {}

        def row_max(matrix: sp.csr_matrix) -> np.ndarray:
            if matrix.shape[1] == 0:
                return np.zeros(matrix.shape[0], dtype=matrix.dtype)
            return np.asarray(matrix.max(axis=1).toarray()).ravel()

        out["rules"] = pieces["confidence"][:, columns].toarray()
        tops["rules"] = row_max(pieces["confidence"])
        best_rule = pieces["number"][:, columns].toarray().astype(np.int64) - 1
        out["similar_items"] = pieces["similar"][:, columns].toarray()
        tops["similar_items"] = row_max(pieces["similar"])
        if self._segment_share is not None:
            segment = np.where(rows >= 0, self._segment_of[np.maximum(rows, 0)], -1)
            known = segment >= 0
            share = self._segment_share[np.maximum(segment, 0)][:, columns]
            out["segment"] = np.where(known[:, None], share, 0.0)
            tops["segment"] = np.where(known, self._segment_top[np.maximum(segment, 0)], 0.0)
            ceilings["segment"] = np.where(known, self._next_share[np.maximum(segment, 0)],
                                           0.0)[:, None]  # fmt: skip
        friends = pieces["friends"]
        weight = np.maximum(np.asarray(friends.sum(axis=1)).ravel(), 1e-12)
        out["friends"] = pieces["bought"][:, columns].toarray() / weight[:, None]
        tops["friends"] = row_max(pieces["bought"]) / weight
        if self._item_category is not None:
            has = self._item_category[columns] >= 0
            category = np.maximum(self._item_category[columns], 0)
            for name, counts in (
                ("own_categories", self._sparse_rows(self._category_lines, rows).toarray()),
                ("friends_categories", (friends @ self._category_lines).toarray()),
            ):
                share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
                out[name] = np.where(has, share[:, category] * self._within_category[columns], 0)
                tops[name] = (share * self._top_within).max(axis=1, initial=0.0)
                ceilings[name] = np.concatenate(
                    [share * self._next_within[:-1], np.zeros((n, 1))], axis=1)  # fmt: skip
        out["popular"] = np.broadcast_to(self._popular[columns], (n, len(columns)))
        tops["popular"] = np.full(n, self._popular.max(initial=0.0), dtype=self._popular.dtype)
        ceilings["popular"] = np.broadcast_to(self._next_popular, (n, len(self._next_popular)))
        return out, tops, best_rule, ceilings

    def _blend(self, rows: np.ndarray, signals: dict[str, np.ndarray],
               tops: dict[str, np.ndarray]) -> np.ndarray:  # fmt: skip
        """The weighted blend of the scaled signals; the cold-start rule for customers without
        purchases (see the module docstring)."""
        n, n_columns = signals["popular"].shape
        scores = np.zeros((n, n_columns), dtype=np.float64)
        for name, weight in self.weights_.items():
            if weight > 0 and name in signals:
                scores += weight * _scale(signals[name], tops[name])
        history = self._history(rows)
        if (~history).any():
            cold = np.flatnonzero(~history)
            friends = _scale(signals["friends"][cold], tops["friends"][cold])
            weights = self._fallback_weights(signals)
            total = sum(weights.values())
            fallback = sum(w * _scale(signals[s][cold], tops[s][cold]) for s, w in weights.items())
            fallback = np.asarray(fallback, dtype=np.float64) / total
            scores[cold] = np.where(friends > 0, 1.0 + friends, np.minimum(fallback, 1.0))
        return scores

    def _fallback_weights(self, signals: Mapping[str, object]) -> dict[str, float]:
        weights = {s: self.weights_[s] for s in ("segment", "popular")
                   if self.weights_[s] > 0 and s in signals}  # fmt: skip
        return weights or {"popular": 1.0}

    def _history(self, rows: np.ndarray) -> np.ndarray:
        """Whether each customer bought anything before `as_of_`."""
        history = np.zeros(len(rows), dtype=bool)
        known = rows >= 0
        history[known] = np.diff(self._owned.indptr)[rows[known]] > 0
        return history

    def _bound(self, rows: np.ndarray, tops: dict[str, np.ndarray],
               ceilings: dict[str, np.ndarray]) -> np.ndarray:  # fmt: skip
        """The most any item outside the candidates can score, per customer: such an item has
        no rule, similar-item or friend signal, and at most the ceilings of the others."""
        n, n_groups = len(rows), len(self._next_popular)
        warm = np.zeros((n, n_groups))
        for name, ceiling in ceilings.items():
            if self.weights_[name] > 0:
                warm += self.weights_[name] * _scale(np.broadcast_to(ceiling, (n, n_groups)),
                                                     tops[name])  # fmt: skip
        bound = warm.max(axis=1)
        cold = ~self._history(rows)
        if cold.any():
            weights = self._fallback_weights(ceilings)
            fallback = sum(w * _scale(np.broadcast_to(ceilings[s], (n, n_groups))[cold],
                                      tops[s][cold]) for s, w in weights.items())  # fmt: skip
            total = sum(weights.values())
            bound[cold] = np.minimum(np.asarray(fallback).max(axis=1) / total, 1.0)
        return bound

    def _reasons(self, rows: np.ndarray, positions: np.ndarray, top_items: np.ndarray,
                 signals: dict[str, np.ndarray], tops: dict[str, np.ndarray],
                 best_rule: np.ndarray) -> list[list[list[str]]]:  # fmt: skip
        """For each customer and picked item, the strongest contributions to its score in words
        (at most three, strongest first). For a customer without history: friends, then
        segment, then popularity, as the cold-start rule ranks them."""
        n, take = top_items.shape
        strength = np.zeros((n, take, len(SIGNALS)))
        picked = {name: np.take_along_axis(np.asarray(values), positions, axis=1)
                  for name, values in signals.items()}  # fmt: skip
        for k, name in enumerate(SIGNALS):
            if name in picked and self.weights_[name] > 0:
                top = np.maximum(tops[name], 0)[:, None]
                strength[:, :, k] = self.weights_[name] * picked[name] / np.where(top > 0, top, 1)
        cold = ~self._history(rows)
        if cold.any():
            strength[cold] = 0.0
            for k, name in enumerate(("friends", "segment", "popular")):
                if name in picked and (name == "friends" or self.weights_[name] > 0):
                    strength[cold, :, SIGNALS.index(name)] = np.where(
                        picked[name][cold] > 0, 3.0 - k, 0.0)  # fmt: skip
        order = np.argsort(-strength, axis=2, kind="stable")[:, :, :3]
        friend_counts = self._friend_counts(rows, top_items) if "friends" in signals else None
        similar = self._most_similar_owned(rows, top_items)
        rule_numbers = np.take_along_axis(best_rule, positions, axis=1)
        sentences = np.empty((n, take, len(SIGNALS)), dtype=object)
        for k, name in enumerate(SIGNALS):
            if name in picked:
                sentences[:, :, k] = self._sentences(name, rows, top_items, picked, rule_numbers,
                                                     friend_counts, similar)  # fmt: skip
        chosen = np.take_along_axis(sentences, order, axis=2).reshape(n * take, -1).tolist()
        # strengths are never negative: the positive ones lead each item's order
        counts = (np.take_along_axis(strength, order, axis=2) > 0).sum(axis=2).ravel().tolist()
        flat = [said[:c] for said, c in zip(chosen, counts, strict=True)]
        return [flat[b * take : (b + 1) * take] for b in range(n)]

    def _sentences(
        self, name: str, rows: np.ndarray, top_items: np.ndarray, picked: dict[str, np.ndarray],
        rule_numbers: np.ndarray, friend_counts: np.ndarray | None, similar: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """The sentence of signal `name` for each customer and picked item, (customers x picks)
        objects; only read where the signal contributes. Each distinct sentence is formatted
        once and spread by index."""
        if name == "rules":
            said = [f"often bought in the same order as {a} (confidence {c:.2f})"
                    for a, c in self._rule_text] or [""]  # fmt: skip
            return np.asarray(said, dtype=object)[np.maximum(rule_numbers, 0)]
        if name == "similar_items":
            distinct, inverse = np.unique(similar, return_inverse=True)
            said = [f"customers who bought {self._item_names[item]} bought it" if item >= 0
                    else "" for item in distinct.tolist()]  # fmt: skip
            return np.asarray(said, dtype=object)[inverse.reshape(similar.shape)]
        if name == "segment":
            label = self._segment_of[rows] if len(self._segment_of) else np.zeros(len(rows), int)
            share = picked["segment"]
            keys = np.column_stack([np.repeat(label, share.shape[1]), share.ravel()])
            distinct, inverse = np.unique(keys, axis=0, return_inverse=True)
            said = [f"bought by {p:.0%} of segment {self._segment_labels[int(j)]}"
                    if 0 <= j < len(self._segment_labels) else "" for j, p in distinct]  # fmt: skip
            return np.asarray(said, dtype=object)[inverse.ravel()].reshape(share.shape)
        if name == "friends":
            count = (friend_counts if friend_counts is not None
                     else np.zeros(top_items.shape, dtype=np.int64))  # fmt: skip
            said = [f"bought by {c} friend{'s' if c != 1 else ''}"
                    for c in range(int(count.max(initial=0)) + 1)]  # fmt: skip
            return np.asarray(said, dtype=object)[count]
        if name in ("own_categories", "friends_categories"):
            who = "you buy" if name == "own_categories" else "your friends buy"
            if self._item_category is None:  # (no category signal is picked without them)
                return np.full(top_items.shape, "", dtype=object)
            said = [f"popular in {c}, which {who}" for c in self._category_names] or [""]
            return np.asarray(said, dtype=object)[np.maximum(self._item_category[top_items], 0)]
        distinct, inverse = np.unique(top_items, return_inverse=True)
        said = [f"popular: bought by {self._buyers[item]} customers" for item in distinct.tolist()]
        return np.asarray(said, dtype=object)[inverse.reshape(top_items.shape)]

    def _friend_counts(self, rows: np.ndarray, top_items: np.ndarray) -> np.ndarray:
        """How many friends of each customer bought each picked item."""
        friends = self._sparse_rows(self._friends, rows)
        friends.data[:] = 1.0
        columns = np.unique(top_items)
        counts = (friends @ self._owned_csc[:, columns]).toarray()
        position = np.searchsorted(columns, top_items)
        return np.take_along_axis(counts, position, axis=1).astype(np.int64)

    def _most_similar_owned(self, rows: np.ndarray, top_items: np.ndarray) -> np.ndarray:
        """For each customer and picked item, the customer's own item most similar to it (-1:
        none)."""
        best = np.full(top_items.shape, -1, dtype=np.int64)
        if self.weights_["similar_items"] <= 0:
            return best
        for b, row in enumerate(rows):
            mine = _row_indices(self._owned, row) if row >= 0 else np.zeros(0, dtype=np.int64)
            if len(mine) == 0:
                continue
            if self._similarity_dense is not None:
                block = self._similarity_dense[np.ix_(mine, top_items[b])]
            else:
                block = self._similarity[mine][:, top_items[b]].toarray()
            best[b] = np.where(block.max(axis=0) > 0, mine[block.argmax(axis=0)], -1)
        return best

    # --- evaluation ------------------------------------------------------------------------

    def evaluate(
        self,
        lines: pd.DataFrame,
        until: pd.Timestamp,
        *,
        first: int = 10,
        customer_ids: Sequence[object] | None = None,
    ) -> RecommendationEvaluation:
        """Compare the recommendations (owned items left out) and the popularity baseline with
        the items customers newly bought in [as_of_, until); see `RecommendationEvaluation`."""
        check_is_fitted(self, "weights_")
        require(lines, ("customer_id", "at", self.item_col), "LINES")
        period = lines.loc[(lines["at"] >= self.as_of_) & (lines["at"] < utc(until))
                           & lines[self.item_col].notna()]  # fmt: skip
        if customer_ids is not None:
            period = period.loc[period["customer_id"].isin(set(customer_ids))]
        bought = pd.DataFrame(
            {
                "customer_id": period["customer_id"].to_numpy(),
                "item": period[self.item_col].astype(str).to_numpy(),
            }
        )
        bought = bought.dropna().drop_duplicates()
        rows = self.customers_.get_indexer(bought["customer_id"])
        items = self.items_.get_indexer(bought["item"])
        already = np.zeros(len(bought), dtype=bool)
        both = (items >= 0) & (rows >= 0)
        if both.any():  # (scipy answers an empty pair of indexers with a matrix, not values)
            already[both] = np.asarray(self._owned[rows[both], items[both]]).ravel() > 0
        new = bought.loc[~already].assign(item_at=items[~already])
        if new.empty:
            nan = float("nan")
            return RecommendationEvaluation(0, first, nan, nan, nan, nan, nan, nan)
        codes, customers = pd.factorize(new["customer_id"], sort=True)
        new_items = np.bincount(codes, minlength=len(customers))
        n_items = len(self.items_)
        known = new["item_at"].to_numpy() >= 0
        # (customer, item) pairs bought in the period, as one sorted number each
        targets = np.unique(codes[known].astype(np.int64) * max(n_items, 1)
                            + new["item_at"].to_numpy()[known])  # fmt: skip

        def hits(at: np.ndarray, picked: np.ndarray, scores: np.ndarray) -> np.ndarray:
            pairs = at[:, None].astype(np.int64) * n_items + picked
            return (np.isin(pairs, targets) & np.isfinite(scores)).sum(axis=1)

        model_hits = np.zeros(len(customers))
        baseline_hits = np.zeros(len(customers))
        rows = self.customers_.get_indexer(customers)
        if n_items:
            for batch in self._scored(rows, first, exclude_owned=True, explain=False):
                model_hits[batch.at] = hits(batch.at, batch.items, batch.scores)
            # the baseline: the most bought items not owned, all among the first `first` +
            # owned items of the tie order
            owned_counts = np.where(rows >= 0, np.diff(self._owned.indptr)[np.maximum(rows, 0)], 0)
            start = 0
            while start < len(rows):
                stop, most = start, 0
                while stop < len(rows):
                    wider = max(most, int(owned_counts[stop]))
                    if stop > start and (stop - start + 1) * min(n_items, first + wider) > (
                            _CELLS_PER_BATCH):  # fmt: skip
                        break
                    stop, most = stop + 1, wider
                width = min(n_items, first + most)
                columns = self._tie_order[:width]
                part = rows[start:stop]
                scores = np.tile(self._popular[columns], (len(part), 1)).astype(np.float64)
                scores[self._sparse_rows(self._owned, part)[:, columns].toarray() > 0] = -np.inf
                positions = _top_per_row(scores, min(first, width))
                top = np.take_along_axis(scores, positions, axis=1)
                baseline_hits[start:stop] = hits(np.arange(start, stop), columns[positions], top)
                start = stop
        return RecommendationEvaluation(
            len(customers), first,
            float(np.mean(model_hits > 0)), float(np.mean(model_hits / first)),
            float(np.mean(model_hits / new_items)),
            float(np.mean(baseline_hits > 0)), float(np.mean(baseline_hits / first)),
            float(np.mean(baseline_hits / new_items)),
        )  # fmt: skip


@dataclass
class _Picks:
    """A batch's picks: `at`, the customers' places among those asked for; `items` and
    `scores`, (customers x picks), best first (-inf: not to be shown); `reasons` per customer and
    pick (None: not asked for); `certain`, whether each customer's picks are the whole
    catalogue's (see `Recommender._scored`)."""

    at: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    reasons: list[list[list[str]]] | None
    certain: np.ndarray

    def subset(self, keep: np.ndarray, at: np.ndarray) -> _Picks:
        reasons: list[list[list[str]]] | None = None
        if self.reasons is not None:
            reasons = [r for r, k in zip(self.reasons, keep.tolist(), strict=True) if k]
        return _Picks(at, self.items[keep], self.scores[keep], reasons, self.certain[keep])


# --- helpers --------------------------------------------------------------------------------


def _batches(order: np.ndarray, sizes: np.ndarray, always: int, n_items: int
             ) -> list[np.ndarray]:  # fmt: skip
    """Customers (taken in `order`, fewest candidates first) in batches of at most
    `_CELLS_PER_BATCH` customers x candidate items, counting each batch's candidates as the
    items always scored plus every customer's own (an overestimate: they overlap)."""
    batches: list[np.ndarray] = []
    begin, total = 0, always
    ordered = sizes[order].tolist()
    for k, size in enumerate(ordered):
        if k > begin and (k - begin + 1) * min(n_items, total + size) > _CELLS_PER_BATCH:
            batches.append(order[begin:k])
            begin, total = k, always
        total += size
    if begin < len(order):
        batches.append(order[begin:])
    return batches


def _row_indices(matrix: sp.csr_matrix | sp.csc_matrix, at: int) -> np.ndarray:
    """The stored indices of one row (CSR) or column (CSC)."""
    return matrix.indices[matrix.indptr[at] : matrix.indptr[at + 1]]


def _top_per_row(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the `k` largest values of each row, largest first, equal values in
    column order: `np.argsort(-values, axis=1, kind="stable")[:, :k]` without sorting whole
    rows (a partition finds each row's k-th value; only the k picks are sorted)."""
    n, m = values.shape
    if k >= m or n == 0:
        return np.argsort(-values, axis=1, kind="stable")[:, :k]
    negated = -values
    kth = np.partition(negated, k - 1, axis=1)[:, k - 1 : k]
    above = negated < kth
    level = negated == kth
    room = k - above.sum(axis=1, keepdims=True)
    keep = above | (level & (np.cumsum(level, axis=1) <= room))
    columns = np.nonzero(keep)[1].reshape(n, k)
    order = np.argsort(np.take_along_axis(negated, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


def _scale(values: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Each row of `values` divided by its customer's `top` (zeros where the top is not
    positive)."""
    top = np.asarray(top)[:, None]
    return np.where(top > 0, values / np.where(top > 0, top, 1.0), 0.0)


def _keep_top_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Only the `keep` largest entries of each row (ties: the smaller column); columns sorted.

    Only rows longer than `keep` are cut, each by the `keep`-th largest value found with a
    partition (linear): sorting every pair by row, value and column took most of the similarities'
    fit on the Epinions sample."""
    matrix = matrix.tocsr(copy=True)
    matrix.sum_duplicates()
    matrix.sort_indices()
    indptr, data = matrix.indptr, matrix.data
    counts = np.diff(indptr)
    long_rows = np.flatnonzero(counts > keep)
    if len(long_rows) == 0:
        return matrix
    kept = np.ones(len(data), dtype=bool)
    for r in long_rows.tolist():
        start, stop = int(indptr[r]), int(indptr[r + 1])
        values = data[start:stop]
        nth = stop - start - keep
        threshold = np.partition(values, nth)[nth]
        chosen = values > threshold
        ties = np.flatnonzero(values == threshold)[: keep - int(chosen.sum())]
        chosen[ties] = True
        kept[start:stop] = chosen
    new_counts = np.minimum(counts, keep)
    new_indptr = np.concatenate([[0], np.cumsum(new_counts)]).astype(matrix.indices.dtype)
    return sp.csr_matrix((data[kept], matrix.indices[kept], new_indptr), shape=matrix.shape)
