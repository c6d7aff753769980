"""Money: exact to the currency's minor unit on both engines.

Amounts are stored as numbers in the currency's major unit (pounds, not pence), each one rounded
to the currency's minor unit when it is loaded (`loaders.validate`): a stored amount is the binary
double nearest to a decimal with at most `MINOR_DIGITS` decimals, which prints as that decimal.
What goes wrong with binary floats is adding them (0.1 + 0.2 is 0.30000000000000004, and Neo4j
and FalkorDB add in different orders), so every sum of money in a statement is a sum of whole
thousandths (`money_sum`): each term rounded to an integer number of thousandths first, which is
exact for any amount of up to three decimals, and integers add exactly (up to 2**53
thousandths, about 9 trillion in the major unit). The result, divided by 1000 once, is again
the double nearest to the exact decimal: the same on both engines, printed to the cent.

The currency is one per deployment: `CRM_GRAPH_CURRENCY`, an ISO 4217 code (default `GBP`), read
with the store's settings (`StoreSettings.currency`) and put in force by `open_store`
(`use_currency`), fixes the minor unit; amounts with more decimals are rounded half to even when
loaded.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from crm_graph.graph.errors import ConfigurationError

SUM_SCALE = 1000
"""Sums are taken in thousandths of the major unit: exact for currencies of up to 3 decimals."""

_DIGITS = {
    # ISO 4217 currencies whose minor unit is not the hundredth (the others have 2 decimals)
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "UYI",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


DEFAULT_CURRENCY = "GBP"
_in_force = DEFAULT_CURRENCY
"""The deployment's currency (`use_currency`)."""


@functools.cache
def currency(setting: str | None = None) -> tuple[str, int]:
    """A currency code (`CRM_GRAPH_CURRENCY`'s text; default: the one in force) and its number of
    decimals."""
    raw = _in_force if setting is None else setting
    code = raw.strip().upper()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise ConfigurationError(
            f"CRM_GRAPH_CURRENCY must be an ISO 4217 code such as GBP, EUR or JPY, not {raw!r}"
        )
    return code, _DIGITS.get(code, 2)


def use_currency(setting: str) -> None:
    """Put the deployment's currency in force (`open_store` does, from `StoreSettings.currency`)."""
    global _in_force
    _in_force = currency(setting)[0]


def minor_digits() -> int:
    return currency(_in_force)[1]


def exact(amount: float | Decimal) -> float:
    """`amount` rounded half to even to the currency's minor unit (the double nearest to it)."""
    try:
        value = Decimal(str(amount)) if isinstance(amount, float) else amount
        step = Decimal(1).scaleb(-minor_digits())
        return float(value.quantize(step, rounding=ROUND_HALF_EVEN))
    except InvalidOperation as e:  # not finite
        raise ValueError(f"{amount!r} is not an amount of money") from e


def product(quantity: float, unit_price: float) -> float:
    """A line's amount: quantity x unit price, computed in decimal, rounded to the minor unit."""
    return exact(Decimal(str(quantity)) * Decimal(str(unit_price)))


def add(*amounts: float) -> float:
    """The exact sum of amounts, as the double nearest to it."""
    return exact(sum((Decimal(str(a)) for a in amounts), Decimal(0)))


def money_sum(expression: str) -> str:
    """Cypher summing `expression` (an amount per row) exactly; 0.0 when there is no row."""
    return f"(sum(round({expression} * {SUM_SCALE})) / {SUM_SCALE}.0)"


def money_add(left: str, right: str) -> str:
    """Cypher adding two amounts exactly."""
    return f"((round({left} * {SUM_SCALE}) + round({right} * {SUM_SCALE})) / {SUM_SCALE}.0)"


_MONEY_SUM = re.compile(r"\bsum\((\w+\.(?:total|amount|otherAmount))\)")


def exact_sums(statement: str) -> str:
    """`statement` with every `sum(x.total)`, `sum(x.amount)` and `sum(x.otherAmount)` (the
    stored amounts of money) summed exactly, as `money_sum` does."""
    return _MONEY_SUM.sub(lambda m: money_sum(m.group(1)), statement)
