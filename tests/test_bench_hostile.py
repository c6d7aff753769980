"""`python -m bench hostile`'s machinery at a tiny size: a real `crm-graph serve`, normal
traffic alone then beside the attackers; the normal traffic answers every request in both
phases and each attack ends the way the README promises. No timings."""

from __future__ import annotations

from pathlib import Path

from bench.business import business_folder
from bench.hostile import run


async def test_normal_traffic_is_answered_and_each_attack_bounded(tmp_path: Path) -> None:
    folder = business_folder(tmp_path, 300, 10.0, 1)
    result = await run(tmp_path, folder, 300, clients=2, seconds=3, warmup=5)
    for phase in (result.alone, result.attacked):
        assert phase.requests > 0 and phase.errors == 0, phase.first_error
    outcomes = {name: set(tally.outcomes) for name, tally in result.attacks.items()}
    assert outcomes["fragment fan-out"] == {"answered"}
    assert outcomes["amplified ties"] == {"QUERY_TOO_COSTLY"}
    assert outcomes["heavy within limits"] == {"answered"}
    assert outcomes["unknown keys"] <= {"HTTP 401", "HTTP 429"}
    assert outcomes["knows 4 deep"] <= {"answered", "TIMEOUT"}  # a small graph may answer
    assert result.p99_ratio > 0
