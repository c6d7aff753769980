"""CI runs the suite on both engines: `.ci/with-neo4j` and the `neo4j` marker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_make_test_with_neo4j_started_when_it_can_be() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "rm -rf .venv" in ci and ".ci/with-neo4j make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert "test-all:\n\t.ci/with-neo4j $(MAKE) test" in makefile


def test_make_test_type_checks_before_the_tests() -> None:
    # CI runs `make test` (above), so the type check is CI's too: strict on api, graph and
    # loaders, the default checks on analytics
    makefile = (ROOT / "Makefile").read_text()
    test_steps = makefile.split("\ntest: ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    steps = [step.strip() for step in test_steps]
    typecheck = "$(MAKE) --no-print-directory typecheck"
    assert typecheck in steps and steps.index(typecheck) < steps.index("$(BIN)/python -m pytest")
    recipe = makefile.split("\ntypecheck: ", 1)[1].split("\n\n", 1)[0]
    assert "--strict \\\n\t\t-p crm_graph.api -p crm_graph.graph -p crm_graph.loaders" in recipe
    assert "$(MYPY) --cache-dir $(VENV)/mypy-cache/analytics -p crm_graph.analytics" in recipe


def test_without_the_shared_neo4j_the_command_runs_without_it_and_says_why(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    env["NEO4J_SH"] = str(tmp_path / "absent" / "neo4j.sh")
    done = subprocess.run(
        [ROOT / ".ci" / "with-neo4j", "sh", "-c", 'echo "uri=${NEO4J_URI:-}"'],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert done.stdout == "uri=\n"
    assert "the Neo4j variants will be skipped" in done.stderr


def test_a_given_neo4j_uri_is_used_as_it_is() -> None:
    env = {**os.environ, "NEO4J_URI": "neo4j://u:p@db.example:7687"}
    done = subprocess.run(
        [ROOT / ".ci" / "with-neo4j", "sh", "-c", 'echo "uri=$NEO4J_URI"'],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    assert done.stdout == "uri=neo4j://u:p@db.example:7687\n"


def _collected(*args: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/graph/test_customers.py", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_the_neo4j_marker_selects_exactly_the_neo4j_variants() -> None:
    every = _collected()
    on_neo4j = _collected("-m", "neo4j")
    not_on_neo4j = _collected("-m", "not neo4j")
    assert on_neo4j and all("neo4j" in test for test in on_neo4j)
    assert not any("[neo4j" in test for test in not_on_neo4j)
    assert sorted(on_neo4j + not_on_neo4j) == sorted(every)


def test_without_neo4j_the_header_says_why_once() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NEO4J_URI"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "neo4j",
         "tests/graph/test_customers.py"],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.stdout.count("NEO4J_URI is not set") == 1, done.stdout
    assert done.stdout.count("no NEO4J_URI\n") == 4, done.stdout  # one line per test, short
    assert "5 skipped" in done.stdout and " passed" not in done.stdout
