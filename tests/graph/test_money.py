"""Money: amounts rounded to the currency's minor unit, sums exact on both engines."""

from __future__ import annotations

import dataclasses

import pytest

from crm_graph.graph import money
from crm_graph.graph.errors import ConfigurationError
from crm_graph.graph.settings import StoreSettings, parse_store
from crm_graph.graph.store import GraphStore, open_store


def test_amounts_are_rounded_half_to_even_to_the_minor_unit() -> None:
    assert money.exact(10.005) == 10.0  # half to even: to the even cent
    assert money.exact(10.015) == 10.02
    assert money.exact(-0.125) == -0.12
    assert money.product(3, 0.85) == 2.55  # 3 * 0.85 is 2.5500000000000003 in binary
    assert money.product(12, 0.001) == 0.01  # a unit price below the penny
    assert money.add(0.1, 0.2) == 0.3
    with pytest.raises(ValueError, match="not an amount of money"):
        money.exact(float("inf"))


def test_the_currency_fixes_the_decimals_and_a_bad_code_names_the_setting() -> None:
    assert money.currency("gbp") == ("GBP", 2)
    assert money.currency("JPY") == ("JPY", 0)
    assert money.currency(" kwd ") == ("KWD", 3)
    with pytest.raises(ConfigurationError, match="CRM_GRAPH_CURRENCY"):
        money.currency("pounds")


def test_only_sums_of_money_are_rewritten() -> None:
    statement = "RETURN sum(t.total) AS a, sum(e.amount) AS b, sum(e.quantity) AS c"
    assert money.exact_sums(statement) == (
        "RETURN (sum(round(t.total * 1000)) / 1000.0) AS a, "
        "(sum(round(e.amount * 1000)) / 1000.0) AS b, sum(e.quantity) AS c"
    )


async def test_sums_of_money_are_exact_on_the_engine(store: GraphStore) -> None:
    # given ten orders of 0.10 and three of 2325.27 (a binary sum: 6976.8099999999995)
    await store.write(
        "UNWIND range(1, 10) AS i CREATE (:Transaction {id: 'a' + toString(i), total: 0.1})"
    )
    await store.write(
        "UNWIND range(1, 3) AS i CREATE (:Transaction {id: 'b' + toString(i), total: 2325.27})"
    )
    # when they are summed as money, the sum is the exact decimal
    rows = await store.read(
        f"MATCH (t:Transaction) RETURN {money.money_sum('t.total')} AS total, "
        f"{money.money_add('0.1', '0.2')} AS added"
    )
    assert rows == [{"total": 6976.81, "added": 0.3}]
    # and with nothing to sum, it is zero
    none = await store.read(f"MATCH (t:Nothing) RETURN {money.money_sum('t.total')} AS total")
    assert none == [{"total": 0.0}]


def test_the_currency_is_read_with_the_store_settings_and_named_when_malformed() -> None:
    # CRM_GRAPH_CURRENCY was read from os.environ on the first amount rounded, outside the
    # settings; now it is a store setting, checked when the settings are read
    assert parse_store("embedded", env={"CRM_GRAPH_CURRENCY": " jpy "}).currency == "JPY"
    assert parse_store("embedded", env={}).currency == "GBP"
    with pytest.raises(ConfigurationError, match="^CRM_GRAPH_CURRENCY must be an ISO 4217 code"):
        parse_store("embedded", env={"CRM_GRAPH_CURRENCY": "pounds"})


async def test_opening_a_store_puts_its_currency_in_force(
    embedded_settings: StoreSettings, embedded_server: GraphStore
) -> None:
    yen = dataclasses.replace(embedded_settings, graph_name="money-yen", currency="JPY")
    assert money.exact(100.4) == 100.4
    store = await open_store(yen, bootstrap=False)
    try:
        assert money.minor_digits() == 0 and money.exact(100.4) == 100.0
    finally:
        await store.close()
        money.use_currency("GBP")
    assert money.exact(100.4) == 100.4
