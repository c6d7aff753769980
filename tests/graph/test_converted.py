"""A store's reply is converted to Python rows a thousand at a time, the event loop given a turn
between (`graph.store.converted`): a large reply within the cost maximum no longer holds every
other request for its whole conversion. On each engine, the rows are those the store sent."""

from __future__ import annotations

from crm_graph.graph.store import ROWS_PER_TURN, GraphStore, converted
from tests.helpers import loop_turns_during


async def test_a_large_reply_is_converted_with_turns_for_the_loop_between() -> None:
    rows = list(range(ROWS_PER_TURN * 4 + 1))
    small, small_turns = await loop_turns_during(
        converted(rows[:ROWS_PER_TURN], lambda n: {"n": n})
    )
    large, large_turns = await loop_turns_during(converted(rows, lambda n: {"n": n}))
    assert small == [{"n": n} for n in rows[:ROWS_PER_TURN]] and small_turns == 0
    assert large == [{"n": n} for n in rows] and large_turns >= 4


async def test_a_large_read_answers_every_row_in_order(store: GraphStore) -> None:
    n = ROWS_PER_TURN * 3 + 7
    rows = await store.read(
        "UNWIND range(1, $n) AS i RETURN i AS n, {i: i, s: toString(i)} AS m", {"n": n}
    )
    assert rows == [{"n": i, "m": {"i": i, "s": str(i)}} for i in range(1, n + 1)]
