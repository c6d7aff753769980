"""The JSON texts of the list and map score properties (`graph.score_properties`), built for a
whole column at once: the same text `score_properties.encode` gives for each customer's value."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crm_graph.graph.score_properties import encode


def encode_groups(keys: Sequence[Any], fragments: Sequence[str], brackets: str = "[]") -> pd.Series:
    """One JSON text per distinct key (in order of first appearance): its `fragments` (JSON
    values, or `"name":value` members with `brackets="{}"`) in their order, joined. The same
    text as `encode` of the list or map, built without one `encode` call per key."""
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1)).tolist()
    ordered = [fragments[i] for i in order.tolist()]
    opening, closing = brackets[:1], brackets[1:]
    texts = [opening + ",".join(ordered[a:b]) + closing
             for a, b in itertools.pairwise(bounds)]  # fmt: skip
    return pd.Series(texts, index=pd.Index(uniques), dtype=object)


def encode_demand(chances: pd.Series) -> pd.Series:
    """Per customer, `{"category": probability}` (4 decimals) from a (customer, category)
    indexed Series of chances."""
    categories = chances.index.get_level_values(1)
    keys = {c: encode(str(c)) + ":" for c in categories.unique()}
    members = [keys[c] + _number(p, 4)
               for c, p in zip(categories, chances.to_numpy().tolist(), strict=True)]  # fmt: skip
    return encode_groups(chances.index.get_level_values(0), members, "{}")


def _number(value: float, digits: int) -> str:
    """`encode(round(value, digits))`: a finite float's JSON is its repr (null otherwise)."""
    rounded = round(float(value), digits)
    return repr(rounded) if math.isfinite(rounded) else "null"


def encode_recommendations(suggested: pd.DataFrame) -> pd.Series:
    """Per customer, the list of `{"productId", "score", "reasons"}` of `Recommender.recommend`
    output, in its order."""
    said: dict[str, str] = {}  # each distinct id and sentence encoded once

    def text(value: str) -> str:
        if value not in said:
            said[value] = encode(value)
        return said[value]

    items = [
        f'{{"productId":{text(str(p))},"score":{_number(s, 6)},'
        f'"reasons":[{",".join([text(r) for r in reasons])}]}}'
        for p, s, reasons in zip(suggested["product_id"], suggested["score"],
                                 suggested["reasons"], strict=True)
    ]  # fmt: skip
    return encode_groups(suggested["customer_id"].to_numpy(), items)
