"""Sharing the event loop's turns: no burst of ready work holds the loop past a budget.

asyncio (and uvloop) run, in one turn of the loop, every callback that was ready when the turn
began. When a store reply wakes the 50 requests' tasks waiting for one DataLoader batch, or
four heavy requests each complete a slice of their lists, they all run in the same turn, one
after the other: each was short, together they held the loop for tens of milliseconds (a turn
measured at 80-100 ms under `python -m bench lag`), and a cheap request, a timer or a socket
waited for all of them.

`spent()` measures the work done in the current turn by everything that asks: the first asker
of a turn starts the clock and schedules `_turn_began` with `call_soon`, which runs at the start
of the next turn and resets it. Work that can wait asks `spent()` before going on (or awaits
`give_turn()`): once the turn's budget (`TURN_BUDGET_S`) is used up, it yields (`sleep(0)`)
and goes on in a later turn, after the timers and I/O due then, instead of lengthening this one.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

TURN_BUDGET_S = 0.005
"""Work done in one turn of the loop, by those who ask, before they yield it (0: never yield)."""

_started: dict[asyncio.AbstractEventLoop, float] = {}
"""The running loops' current turns: when their first asker started the clock."""


def _turn_began(loop: asyncio.AbstractEventLoop) -> None:
    _started.pop(loop, None)


def spent(budget: float | None = None) -> bool:
    """Whether the current turn of the running loop has used up its budget (`TURN_BUDGET_S`,
    or `budget`); False when there is none (0) or no loop runs."""
    limit = TURN_BUDGET_S if budget is None else budget
    if limit <= 0:
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    now = perf_counter()
    started = _started.get(loop)
    if started is None:
        _started[loop] = now
        loop.call_soon(_turn_began, loop)
        return False
    return now - started > limit


async def give_turn(budget: float | None = None) -> None:
    """Return at once while this turn's budget is not used up; otherwise yield the loop until a
    turn that has budget left (the first to ask in a turn always has)."""
    while spent(budget):
        await asyncio.sleep(0)
