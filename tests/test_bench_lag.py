"""`python -m bench lag`'s step timer: each step the loop runs is timed, the one that held the
loop longest is named, and the loop is left as it was. No timings asserted beyond the work a
step is made to do."""

from __future__ import annotations

import asyncio
import time

from bench.lag import LagPhase, _StepTimer


def _spin(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def test_a_step_holding_the_loop_is_timed_and_named_and_the_loop_restored() -> None:
    original = asyncio.events.Handle._run
    phase = LagPhase("test")

    async def holds_the_loop() -> None:
        await asyncio.sleep(0)
        _spin(0.03)  # one step: from the sleep to the task's end
        await asyncio.sleep(0)

    with _StepTimer(phase):
        await asyncio.create_task(holds_the_loop(), name="holder")
    assert asyncio.events.Handle._run is original
    assert max(phase.steps_ms) >= 29.0
    assert phase.longest_ms == max(phase.steps_ms)
    assert phase.longest_step.startswith(f"{max(phase.steps_ms):.1f} ms:")
    assert any(place.startswith("stopped at test_bench_lag.py:") for place in phase.long_steps)
