"""Association rules: exact support, confidence and lift on a hand-made basket table, only orders
before `as_of`, agreement with a brute-force count on random baskets, and the held-out check."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_graph.analytics.frames import LINES, FrameError
from crm_graph.analytics.rules import RULE_COLUMNS, baskets, evaluate_rules, rules

AS_OF = pd.Timestamp("2024-03-01", tz="UTC")
DAY = pd.Timedelta(days=1)

# The textbook shop: five orders before AS_OF.
BEFORE = {
    "T1": ["bread", "milk"],
    "T2": ["bread", "diapers", "beer", "eggs"],
    "T3": ["milk", "diapers", "beer", "cola"],
    "T4": ["bread", "milk", "diapers", "beer"],
    "T5": ["bread", "milk", "diapers", "cola"],
}
# Orders on and after AS_OF: none of them may count.
AFTER = {"T6": ["caviar", "champagne"], "T7": ["caviar", "champagne", "beer"]}


def _lines(orders: dict[str, list[str]], first_day: pd.Timestamp,
           category: dict[str, str] | None = None) -> pd.DataFrame:  # fmt: skip
    """One line per item, one day per order, starting on `first_day`."""
    rows = []
    for day, (transaction, items) in enumerate(orders.items()):
        for item in items:
            rows.append({
                "customer_id": f"C{day % 3}", "transaction_id": transaction,
                "at": first_day + day * DAY, "product_id": item,
                "category": (category or {}).get(item, np.nan), "quantity": 1, "amount": 1.0,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=list(LINES))


def _shop() -> pd.DataFrame:
    return pd.concat([_lines(BEFORE, AS_OF - 10 * DAY), _lines(AFTER, AS_OF)], ignore_index=True)


def _rule(table: pd.DataFrame, antecedents: tuple[str, ...], consequents: tuple[str, ...]
          ) -> pd.Series:  # fmt: skip
    found = table[(table.antecedents == antecedents) & (table.consequents == consequents)]
    assert len(found) == 1, f"{antecedents} -> {consequents} not found once"
    return found.iloc[0]


def test_known_rules_have_exact_figures() -> None:
    # given the textbook shop
    # when mining with support >= 0.4 and confidence >= 0.6
    table = rules(_shop(), AS_OF, min_support=0.4, min_confidence=0.6)
    # then beer -> diapers: support 3/5, confidence 3/3, lift 1 / (4/5)
    beer = _rule(table, ("beer",), ("diapers",))
    assert beer.support == pytest.approx(0.6)
    assert beer.confidence == pytest.approx(1.0)
    assert beer.lift == pytest.approx(1.25)
    assert beer.antecedent_support == pytest.approx(0.6)
    assert beer.consequent_support == pytest.approx(0.8)
    assert beer.orders == 3
    # and diapers -> beer: confidence 3/4, lift 0.75 / 0.6
    diapers = _rule(table, ("diapers",), ("beer",))
    assert diapers.confidence == pytest.approx(0.75)
    assert diapers.lift == pytest.approx(1.25)
    # and bread -> milk: support 3/5, confidence 3/4, lift 0.75 / 0.8 (bought together less than
    # chance would have it)
    bread = _rule(table, ("bread",), ("milk",))
    assert bread.confidence == pytest.approx(0.75)
    assert bread.lift == pytest.approx(0.9375)
    assert list(table.columns) == list(RULE_COLUMNS)


def test_three_item_rules_and_max_len() -> None:
    # given the shop, when allowing three items per rule
    table = rules(_shop(), AS_OF, min_support=0.4, min_confidence=0.6, max_len=3)
    # then {beer, bread} -> diapers (2 orders of 2) is found; with max_len 2 it is not
    rule = _rule(table, ("beer", "bread"), ("diapers",))
    assert rule.support == pytest.approx(0.4) and rule.confidence == pytest.approx(1.0)
    pairs_only = rules(_shop(), AS_OF, min_support=0.4, min_confidence=0.6, max_len=2)
    assert (pairs_only.antecedents.map(len) + pairs_only.consequents.map(len)).max() == 2


def test_only_orders_before_as_of_count() -> None:
    # given orders on and after AS_OF full of caviar and champagne
    # when mining as of AS_OF with a support low enough for anything seen twice
    table = rules(_shop(), AS_OF, min_support=0.01, min_confidence=0.01)
    # then neither caviar nor champagne appears, and supports are over the five earlier orders
    items = {i for side in ("antecedents", "consequents") for r in table[side] for i in r}
    assert items.isdisjoint({"caviar", "champagne"})
    assert _rule(table, ("beer",), ("diapers",)).support == pytest.approx(3 / 5)
    # and one day later the first later order counts
    later = rules(_shop(), AS_OF + DAY / 2, min_support=0.01, min_confidence=0.01)
    assert _rule(later, ("caviar",), ("champagne",)).support == pytest.approx(1 / 6)


def test_rules_are_sorted_strongest_first() -> None:
    table = rules(_shop(), AS_OF, min_support=0.2, min_confidence=0.2)
    keys = list(zip(-table.lift.round(12), -table.confidence.round(12), -table.support.round(12),
                    table.antecedents, table.consequents, strict=True))  # fmt: skip
    assert keys == sorted(keys)


def test_repeated_lines_count_once_and_missing_items_are_skipped() -> None:
    # given an order listing beer twice and a line without a category
    shop = _lines({"T1": ["beer", "beer", "crisps"], "T2": ["beer", "crisps"], "T3": ["tea"]},
                  AS_OF - 5 * DAY, category={"beer": "drinks", "crisps": "snacks"})  # fmt: skip
    # when mining products and categories
    products = rules(shop, AS_OF, min_support=0.5, min_confidence=0.5)
    categories = rules(shop, AS_OF, min_support=0.5, min_confidence=0.5, item_col="category")
    # then beer's support is 2 orders of 3, not 3 lines
    assert _rule(products, ("beer",), ("crisps",)).support == pytest.approx(2 / 3)
    # and the tea order has no category, so only two orders count for categories
    assert _rule(categories, ("drinks",), ("snacks",)).support == pytest.approx(1.0)
    assert len(baskets(shop, until=AS_OF, item_col="category")) == 2


def test_nothing_to_mine_gives_an_empty_table() -> None:
    empty = rules(_shop(), AS_OF - 30 * DAY, min_support=0.1, min_confidence=0.1)
    assert empty.empty and list(empty.columns) == list(RULE_COLUMNS)
    single = rules(_lines({"T1": ["tea"]}, AS_OF - DAY), AS_OF, min_support=0.1,
                   min_confidence=0.1)  # fmt: skip
    assert single.empty


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="min_support"):
        rules(_shop(), AS_OF, min_support=0, min_confidence=0.5)
    with pytest.raises(ValueError, match="min_confidence"):
        rules(_shop(), AS_OF, min_support=0.1, min_confidence=1.5)
    with pytest.raises(ValueError, match="max_len"):
        rules(_shop(), AS_OF, min_support=0.1, min_confidence=0.5, max_len=1)
    with pytest.raises(FrameError, match="category"):
        rules(_shop().drop(columns="category"), AS_OF, min_support=0.1, min_confidence=0.5,
              item_col="category")  # fmt: skip


def test_held_out_evaluation() -> None:
    # given rules mined before AS_OF, and four later orders
    table = rules(_shop(), AS_OF, min_support=0.4, min_confidence=0.6)
    later = _lines({"T8": ["beer", "diapers"], "T9": ["beer", "crisps"], "T10": ["tea"],
                    "T11": ["diapers", "milk"]}, AS_OF + DAY)  # fmt: skip
    just_beer = table[(table.antecedents == ("beer",)) & (table.consequents == ("diapers",))]
    # when checking beer -> diapers on them
    result = evaluate_rules(just_beer, later, start=AS_OF, end=AS_OF + 30 * DAY)
    # then beer came in 2 orders, diapers with it in 1; diapers were in 2 of 4 orders
    row = result.per_rule.iloc[0]
    assert (row.test_antecedent_orders, row.test_hits) == (2, 1)
    assert row.test_confidence == pytest.approx(0.5)
    assert row.test_consequent_support == pytest.approx(0.5)
    assert row.test_lift == pytest.approx(1.0)
    assert result.orders == 4
    assert result.coverage == pytest.approx(0.5)
    assert result.hit_rate == pytest.approx(0.5)
    assert result.baseline_hit_rate == pytest.approx(0.5)
    assert result.lift == pytest.approx(1.0)
    # and the earlier orders are not part of the check
    assert evaluate_rules(just_beer, _shop(), start=AS_OF, end=AS_OF + DAY).orders == 1


def test_held_out_period_without_orders() -> None:
    table = rules(_shop(), AS_OF, min_support=0.4, min_confidence=0.6)
    result = evaluate_rules(table, _shop(), start=AS_OF + 60 * DAY, end=AS_OF + 90 * DAY)
    assert result.orders == 0 and np.isnan(result.hit_rate)
    assert (result.per_rule.test_antecedent_orders == 0).all()


# --- against brute force --------------------------------------------------------------------


Rule = tuple[tuple[str, ...], tuple[str, ...]]


def _brute_force(orders: list[frozenset[str]], min_support: float, min_confidence: float,
                 max_len: int) -> dict[Rule, tuple[float, float, float]]:  # fmt: skip
    """Every rule by plain counting: (antecedents, consequents) -> (support, confidence, lift)."""
    n = len(orders)

    def support(items: frozenset[str]) -> float:
        return sum(items <= order for order in orders) / n

    universe = sorted(set().union(*orders))
    found = {}
    for size in range(2, max_len + 1):
        for itemset in combinations(universe, size):
            both = support(frozenset(itemset))
            if both < min_support:
                continue
            for left in range(1, size):
                for antecedent in combinations(itemset, left):
                    consequent = tuple(i for i in itemset if i not in antecedent)
                    confidence = both / support(frozenset(antecedent))
                    if confidence >= min_confidence:
                        lift = confidence / support(frozenset(consequent))
                        found[(antecedent, consequent)] = (both, confidence, lift)
    return found


BASKETS = st.lists(st.sets(st.sampled_from("abcdefg"), min_size=1, max_size=5), min_size=1,
                   max_size=12)  # fmt: skip
CONFIDENCES = st.sampled_from([0.01, 0.301, 0.501, 0.801])  # never equal to a small fraction


@settings(max_examples=60, deadline=None)
@given(orders=BASKETS, support_orders=st.integers(1, 4), min_confidence=CONFIDENCES,
       max_len=st.integers(2, 4))  # fmt: skip
def test_fp_growth_matches_brute_force(orders: list[set[str]], support_orders: int,
                                       min_confidence: float, max_len: int) -> None:  # fmt: skip
    # given random baskets, and a support threshold halfway between two order counts
    min_support = (min(support_orders, len(orders)) - 0.5) / len(orders)
    lines = _lines({f"T{i:02d}": sorted(o) for i, o in enumerate(orders)}, AS_OF - 30 * DAY)
    # when mining
    table = rules(lines, AS_OF, min_support=min_support, min_confidence=min_confidence,
                  max_len=max_len)  # fmt: skip
    expected = _brute_force([frozenset(o) for o in orders], min_support, min_confidence, max_len)
    # then exactly the brute-force rules come out, with the same figures, all in range
    got = {(a, c): (s, f, li) for a, c, s, f, li in zip(table.antecedents, table.consequents,
           table.support, table.confidence, table.lift, strict=True)}  # fmt: skip
    assert set(got) == set(expected)
    for key, figures in expected.items():
        assert got[key] == pytest.approx(figures)
    # and each side's support is counted over every order, those of one item too
    n = len(orders)
    for side, column in (("antecedents", "antecedent_support"),
                         ("consequents", "consequent_support")):  # fmt: skip
        counted = [sum(set(items) <= o for o in orders) / n for items in table[side]]
        assert table[column].tolist() == pytest.approx(counted)
    assert table.support.between(0, 1).all() and table.confidence.between(0, 1).all()
    assert table.antecedent_support.between(0, 1).all() and (table.lift > 0).all()
    assert (table.support <= table.antecedent_support + 1e-12).all()


def test_one_product_per_order_mines_nothing_whatever_the_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlxtend.frequent_patterns as mining

    # given 3,000 orders of one product each over a catalogue of 2,000, and a few of two
    # products among rare ones (each bought less often than the minimum support), one a day
    single = {f"S{i}": [f"p{i % 2000}"] for i in range(3000)}
    rare = {f"R{i}": [f"q{i}", f"q{i + 1}"] for i in range(0, 20, 2)}
    lines = _lines({**single, **rare}, AS_OF - 4000 * DAY)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("FP-growth ran on orders that cannot hold a frequent pair")

    monkeypatch.setattr(mining, "fpgrowth", refuse)
    # when mining with a support of 0.1% (3 orders), then there is no rule, and no mining
    table = rules(lines, AS_OF, min_support=0.001, min_confidence=0.01)
    assert table.empty and list(table.columns) == list(RULE_COLUMNS)
    # and once two products are bought together often enough, the pair is mined as before
    common = {f"C{i}": ["p1", "p2"] for i in range(5)}
    monkeypatch.undo()
    found = rules(_lines({**single, **rare, **common}, AS_OF - 4000 * DAY), AS_OF,
                  min_support=0.001, min_confidence=0.01)  # fmt: skip
    assert set(zip(found.antecedents, found.consequents, strict=True)) == {
        (("p1",), ("p2",)),
        (("p2",), ("p1",)),
    }
    total = 3000 + 10 + 5
    assert found.support.tolist() == pytest.approx([5 / total] * 2)
    # p1 and p2 are each in 2 single orders (p1: S1, S2001; p2: S2, S2002) and the 5 pairs
    assert found.antecedent_support.tolist() == pytest.approx([7 / total] * 2)
