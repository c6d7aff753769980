"""Association rules: which products (or categories) are bought together in the same order.

`rules` mines them with FP-growth (mlxtend's `fpgrowth` and `association_rules`) from the orders
placed before an explicit `as_of`; `evaluate_rules` checks how well they hold on a later period.

Definitions, over the orders considered (an order is the set of distinct items on its lines;
lines without an item, e.g. a missing category, are left out, and so are orders left empty):

- support(X) = share of orders containing every item of X;
- a rule A -> C (A and C disjoint, non-empty) has support(A -> C) = support(A and C),
  confidence = support(A and C) / support(A), lift = confidence / support(C);
- `max_len` caps the number of items in A and C together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crm_graph.analytics.frames import require, utc

__all__ = ["RULE_COLUMNS", "RuleEvaluation", "baskets", "evaluate_rules", "rules"]

RULE_COLUMNS = ("antecedents", "consequents", "antecedent_support", "consequent_support",
                "support", "confidence", "lift", "orders")  # fmt: skip
"""The columns of a rule table; antecedents and consequents are sorted tuples of item ids and
`orders` counts the orders holding both."""


def baskets(
    lines: pd.DataFrame,
    *,
    until: pd.Timestamp,
    since: pd.Timestamp | None = None,
    item_col: str = "product_id",
) -> pd.Series:
    """Each order's items: transaction_id -> sorted tuple of distinct items, for orders placed in
    [since, until) (since None: from the beginning). Orders with no item are left out."""
    matrix, items, orders = _order_matrix(lines, until=until, since=since, item_col=item_col)
    names = np.asarray(items, dtype=object)
    bounds = matrix.indptr
    return pd.Series(
        [tuple(names[matrix.indices[bounds[i] : bounds[i + 1]]]) for i in range(len(orders))],
        index=orders, name="items", dtype=object,
    ).sort_index()  # fmt: skip


def rules(
    lines: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    min_support: float,
    min_confidence: float,
    max_len: int = 3,
    item_col: str = "product_id",
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Association rules between items bought in the same order, mined from orders placed before
    `as_of` (and at or after `since`, if given).

    Returns one row per rule with `RULE_COLUMNS`, strongest first: by lift, then confidence,
    then support, then the items themselves (so the order is deterministic).
    """
    if not 0 < min_support <= 1:
        raise ValueError(f"min_support must be in (0, 1], got {min_support}")
    if not 0 <= min_confidence <= 1:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
    if max_len < 2:
        raise ValueError(f"max_len must be at least 2 (one item each side), got {max_len}")
    matrix, items, orders = _order_matrix(lines, until=as_of, since=since, item_col=item_col)
    itemsets = _frequent_itemsets(matrix, items, min_support, max_len)
    if itemsets is None:
        return _empty_rules()

    from mlxtend.frequent_patterns import association_rules

    found = association_rules(
        itemsets, num_itemsets=len(orders), metric="confidence", min_threshold=min_confidence,
        return_metrics=["antecedent support", "consequent support", "support", "confidence",
                        "lift"],
    )  # fmt: skip
    if found.empty:
        return _empty_rules()
    table = pd.DataFrame({
        "antecedents": [tuple(sorted(a)) for a in found["antecedents"]],
        "consequents": [tuple(sorted(c)) for c in found["consequents"]],
        "antecedent_support": found["antecedent support"].to_numpy(dtype=float),
        "consequent_support": found["consequent support"].to_numpy(dtype=float),
        "support": found["support"].to_numpy(dtype=float),
        "confidence": found["confidence"].to_numpy(dtype=float),
        "lift": found["lift"].to_numpy(dtype=float),
    })  # fmt: skip
    table["orders"] = np.rint(table["support"] * len(orders)).astype(np.int64)
    return _sorted(table)


@dataclass(frozen=True)
class RuleEvaluation:
    """How rules mined before a date held on the orders of a later period.

    - `per_rule`: each rule evaluated with its held-out figures: `test_antecedent_orders` (orders
      containing the antecedent), `test_hits` (of those, orders also containing the consequent),
      `test_confidence` = hits / antecedent orders, `test_consequent_support` and `test_lift`
      = test confidence / test consequent support (NaN where undefined).
    - `orders`: held-out orders; `coverage`: share of them containing at least one evaluated
      rule's antecedent.
    - `hit_rate`: over all (order, rule) pairs where the antecedent is in the order, the share
      where the consequent is too (the held-out confidence, pooled over rules).
    - `baseline_hit_rate`: the same share expected if consequents were bought independently of
      antecedents (each pair counted with its consequent's held-out support); `lift` is the
      ratio of the two.
    """

    per_rule: pd.DataFrame
    orders: int
    coverage: float
    hit_rate: float
    baseline_hit_rate: float

    @property
    def lift(self) -> float:
        if self.baseline_hit_rate > 0:
            return self.hit_rate / self.baseline_hit_rate
        return float("nan")


def evaluate_rules(
    rule_table: pd.DataFrame,
    lines: pd.DataFrame,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    top: int | None = 100,
    item_col: str = "product_id",
) -> RuleEvaluation:
    """Check the first `top` rules of `rule_table` (all if None) on the orders placed in
    [start, end), normally the period right after the rules' `as_of`. See `RuleEvaluation`."""
    require(rule_table, ("antecedents", "consequents"), "rules")
    chosen = rule_table if top is None else rule_table.head(top)
    matrix, items, orders = _order_matrix(lines, until=end, since=start, item_col=item_col)
    per_rule = chosen.reset_index(drop=True).copy()
    n = len(orders)
    if n == 0 or per_rule.empty:
        for column in ("test_antecedent_orders", "test_hits"):
            per_rule[column] = np.zeros(len(per_rule), dtype=np.int64)
        for column in ("test_confidence", "test_consequent_support", "test_lift"):
            per_rule[column] = np.full(len(per_rule), np.nan)
        return RuleEvaluation(per_rule, n, 0.0, float("nan"), float("nan"))
    column_of = {item: j for j, item in enumerate(items)}
    csc = matrix.tocsc().astype(np.int32)

    def holding(itemset: tuple[str, ...]) -> np.ndarray:
        """Orders holding every item of the set (boolean per order)."""
        if any(item not in column_of for item in itemset):
            return np.zeros(n, dtype=bool)
        counts = np.asarray(csc[:, [column_of[i] for i in itemset]].sum(axis=1)).ravel()
        return counts == len(itemset)

    fired_any = np.zeros(n, dtype=bool)
    antecedent_orders, hits, consequent_support = [], [], []
    for antecedent, consequent in zip(per_rule["antecedents"], per_rule["consequents"],
                                      strict=True):  # fmt: skip
        has_antecedent = holding(tuple(antecedent))
        has_consequent = holding(tuple(consequent))
        fired_any |= has_antecedent
        antecedent_orders.append(int(has_antecedent.sum()))
        hits.append(int((has_antecedent & has_consequent).sum()))
        consequent_support.append(float(has_consequent.mean()))
    fired = np.asarray(antecedent_orders, dtype=np.int64)
    hit = np.asarray(hits, dtype=np.int64)
    support = np.asarray(consequent_support, dtype=float)
    confidence = np.full(len(fired), np.nan)
    np.divide(hit, fired, out=confidence, where=fired > 0)
    lift = np.full(len(fired), np.nan)
    np.divide(confidence, support, out=lift, where=(support > 0) & (fired > 0))
    per_rule["test_antecedent_orders"] = fired
    per_rule["test_hits"] = hit
    per_rule["test_confidence"] = confidence
    per_rule["test_consequent_support"] = support
    per_rule["test_lift"] = lift
    total = int(fired.sum())
    hit_rate = float(hit.sum() / total) if total else float("nan")
    baseline = float((fired * support).sum() / total) if total else float("nan")
    return RuleEvaluation(per_rule, n, float(fired_any.mean()), hit_rate, baseline)


# --- helpers --------------------------------------------------------------------------------


def _frequent_itemsets(
    matrix: sp.csr_matrix, items: list[str], min_support: float, max_len: int
) -> pd.DataFrame | None:
    """The itemsets of `matrix` (orders x items) in at least `min_support` of its orders, as
    mlxtend's `fpgrowth` gives them (columns `support`, `itemsets`), or None when no itemset of
    two items or more is frequent: no rule.

    Mined on what can give a rule only, so that the cost grows with the orders that share items,
    not with the catalogue: an item in fewer orders than the minimum support is in no frequent
    itemset (it is dropped first), and an order left with fewer than two items holds no itemset
    of two (it is dropped next, and when none is left there is no rule, without any mining). The
    itemsets of two items or more have the same counts in the orders kept as in all of them;
    the single items' supports, which the rules' antecedent and consequent supports are read
    from, are counted over all the orders. (Over the 284k one-item orders of 100k products of
    the Epinions ratings, the whole catalogue went to FP-growth as a sparse frame.)"""
    n_orders = matrix.shape[0]
    if n_orders == 0:
        return None
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    min_count = max(1, math.ceil(min_support * n_orders - 1e-9))
    frequent = np.flatnonzero(counts >= min_count)
    kept = matrix[:, frequent].tocsr()
    several = np.flatnonzero(np.diff(kept.indptr) >= 2)
    if len(several) == 0:
        return None
    kept = kept[several]
    names = [items[i] for i in frequent]

    from mlxtend.frequent_patterns import fpgrowth

    onehot = pd.DataFrame.sparse.from_spmatrix(kept, columns=names)
    # the same minimum count over fewer orders (half an order below it: float noise cannot
    # drop an itemset exactly at it)
    share = (min_count - 0.5) / len(several)
    if share > 1:
        return None
    mined = fpgrowth(onehot, min_support=share, use_colnames=True, max_len=max_len)
    mined = mined[mined["itemsets"].map(len) >= 2]
    if mined.empty:
        return None
    larger = np.rint(mined["support"].to_numpy(dtype=float) * len(several)) / n_orders
    singles = pd.DataFrame({
        "support": counts[frequent] / n_orders,
        "itemsets": [frozenset([name]) for name in names],
    })  # fmt: skip
    return pd.concat(
        [singles, pd.DataFrame({"support": larger, "itemsets": mined["itemsets"].to_numpy()})],
        ignore_index=True,
    )


def _order_matrix(
    lines: pd.DataFrame, *, until: pd.Timestamp, since: pd.Timestamp | None, item_col: str
) -> tuple[sp.csr_matrix, list[str], pd.Index]:
    """Orders x items boolean matrix of the orders placed in [since, until), with the items
    (as text, sorted) and the transaction ids (in order of first appearance: sorting a million
    ids took seconds, and nothing depends on the rows' order) its columns and rows stand for."""
    require(lines, ("transaction_id", "at", item_col), "LINES")
    keep = (lines["at"] < utc(until)) & lines[item_col].notna()
    if since is not None:
        keep &= lines["at"] >= utc(since)
    chosen = lines.loc[keep, ["transaction_id", item_col]]
    order_codes, orders = pd.factorize(chosen["transaction_id"].to_numpy(dtype=object))
    item_codes, items = pd.factorize(chosen[item_col].astype(str), sort=True)
    matrix = sp.csr_matrix(
        (np.ones(len(chosen), dtype=np.int32), (order_codes, item_codes)),
        shape=(len(orders), len(items)),
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return (matrix.astype(bool), [str(i) for i in items],
            pd.Index(orders, name="transaction_id"))  # fmt: skip


def _sorted(table: pd.DataFrame) -> pd.DataFrame:
    """Strongest first; figures compared to 12 decimals so float noise cannot reorder equals."""
    lift, confidence, support = (table[c].round(12).to_numpy() for c in
                                 ("lift", "confidence", "support"))  # fmt: skip
    antecedents, consequents = table["antecedents"].tolist(), table["consequents"].tolist()
    order = sorted(range(len(table)), key=lambda i: (
        -lift[i], -confidence[i], -support[i], antecedents[i], consequents[i]))  # fmt: skip
    return table.iloc[order].reset_index(drop=True)[list(RULE_COLUMNS)]


def _empty_rules() -> pd.DataFrame:
    return pd.DataFrame({
        "antecedents": pd.Series(dtype=object), "consequents": pd.Series(dtype=object),
        **{c: pd.Series(dtype="float64") for c in RULE_COLUMNS[2:7]},
        "orders": pd.Series(dtype="int64"),
    })  # fmt: skip
