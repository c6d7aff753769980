"""Sharing the event loop's turns (graph/turns.py): tasks woken in the same turn, each asking
`give_turn` before its work, spread that work over several turns once the turn's budget is
spent, so a timer or another request waits for one budget, not for all of them."""

from __future__ import annotations

import asyncio
import time

import pytest

from crm_graph.graph import turns


async def _woken_together(tasks: int, work_s: float, ask: bool) -> list[int]:
    """`tasks` tasks woken by one future (as a DataLoader batch wakes its fields), each doing
    `work_s` of work (after `give_turn` when `ask`): the turn number each did it in, counted
    by another task that counts one per turn."""
    turn = 0
    done = False

    async def count() -> None:
        nonlocal turn
        while not done:
            turn += 1
            await asyncio.sleep(0)

    batch: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[int] = []

    async def field() -> None:
        await batch
        if ask:
            await turns.give_turn()
        seen.append(turn)
        until = time.perf_counter() + work_s
        while time.perf_counter() < until:
            pass

    counter = asyncio.create_task(count())
    fields = [asyncio.create_task(field()) for _ in range(tasks)]
    await asyncio.sleep(0)
    batch.set_result(None)
    await asyncio.gather(*fields)
    done = True
    await counter
    return seen


async def test_work_woken_in_one_turn_is_spread_over_turns_once_the_budget_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(turns, "TURN_BUDGET_S", 0.005)
    # 20 fields of 2 ms each: in one turn without asking (40 ms held)
    assert len(set(await _woken_together(20, 0.002, ask=False))) == 1
    # asking, at most 4 of them a turn (3 within 5 ms, and the one that passes it)
    seen = await _woken_together(20, 0.002, ask=True)
    assert max(seen.count(t) for t in set(seen)) <= 4 and len(set(seen)) >= 5


async def test_no_budget_never_yields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns, "TURN_BUDGET_S", 0.0)
    assert len(set(await _woken_together(10, 0.002, ask=True))) == 1
    assert not turns.spent()
