"""`read_columns`: the bulk read path gives the values `read` gives, as columns."""

from __future__ import annotations

import pytest

from crm_graph.graph.errors import QueryError, ReadOnlyViolation
from crm_graph.graph.store import GraphStore

ROWS = """
UNWIND $rows AS r
RETURN r.text AS text, r.n AS n, r.x AS x, r.flag AS flag, r.none AS none, r.list AS list
"""


async def test_columns_hold_what_read_returns_row_by_row(store: GraphStore) -> None:
    rows = [
        {
            "text": 'Zoë "q" | ✓',
            "n": 2**53,
            "x": 0.1,
            "flag": True,
            "none": None,
            "list": ["a", 1, 2.5, None, True, ["nested"]],
        },
        {"text": "", "n": -7, "x": -1e300, "flag": False, "none": None, "list": []},
        {"text": None, "n": None, "x": None, "flag": None, "none": None, "list": None},
    ]
    columns = await store.read_columns(ROWS, {"rows": rows})
    assert list(columns) == ["text", "n", "x", "flag", "none", "list"]
    as_rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                         strict=True)]  # fmt: skip
    assert as_rows == await store.read(ROWS, {"rows": rows})
    assert [type(v) for v in columns["n"][:2]] == [int, int]
    assert [type(v) for v in columns["flag"][:2]] == [bool, bool]


async def test_no_rows_give_empty_columns(store: GraphStore) -> None:
    assert await store.read_columns(ROWS, {"rows": []}) == {
        "text": [], "n": [], "x": [], "flag": [], "none": [], "list": []
    }  # fmt: skip


@pytest.mark.parametrize("value", ["{a: 1}", "c", "[c]", "[[{a: 1}]]"])
async def test_values_other_than_plain_ones_are_refused(store: GraphStore, value: str) -> None:
    await store.write("CREATE (:Customer {id: 'c1'})")
    with pytest.raises(QueryError, match="plain values"):
        await store.read_columns(f"MATCH (c:Customer) RETURN 'ok' AS fine, {value} AS odd")


async def test_a_statement_that_writes_is_refused(store: GraphStore) -> None:
    with pytest.raises(ReadOnlyViolation):
        await store.read_columns("CREATE (:Customer {id: 'c2'}) RETURN 1 AS one")
    assert await store.read("MATCH (c:Customer {id: 'c2'}) RETURN c") == []


async def test_text_of_shared_columns_is_one_string_per_value(store: GraphStore) -> None:
    rows = [{"text": "c" + str(i % 3), "n": i, "list": ["c0"], "x": "c1", "flag": None,
             "none": None} for i in range(9)]  # fmt: skip
    ids: dict[str, str] = {}
    first = await store.read_columns(ROWS, {"rows": rows}, shared={"text": ids, "x": ids})
    second = await store.read_columns(ROWS, {"rows": rows[:2]}, shared={"text": ids})
    # the values are the ones read without sharing
    assert first == await store.read_columns(ROWS, {"rows": rows})
    assert first["text"] == ["c0", "c1", "c2"] * 3
    # each distinct text is one object, across rows, columns and statements
    assert len({id(v) for v in first["text"]}) == 3
    assert first["x"][0] is first["text"][1]
    assert second["text"][0] is first["text"][0]
    assert sorted(ids) == ["c0", "c1", "c2"]
    # columns not named, numbers and text inside lists are read as usual
    assert first["n"] == list(range(9))
    assert first["list"][0] == ["c0"]
