"""`bench.epinions` on a small Epinions sample: the tables it builds are the ones `train` reads,
and it times rules and recommendations as `train` runs them."""

from __future__ import annotations

from pathlib import Path

from bench.epinions import measure


def test_the_epinions_bench_times_rules_and_recommendations(datasets: Path, tmp_path: Path) -> None:
    # given a seeded sample of 300 Epinions users, when benched
    result = measure(300, tmp_path)
    # then rules are skipped for what the orders are (one product each) and recommendations
    # are made and evaluated, with their CPU seconds
    assert result["customers"] == 300 and result["products"] > 1_000
    assert "single product" in result["rules"]
    assert result["recommendations"]["customers"] > 100
    assert result["cpu_seconds_rules_and_recommendations"] > 0
    assert (tmp_path / "epinions-300" / "transactions.csv").exists()
