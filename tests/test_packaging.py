"""The files a user runs before any code: compose file, Makefile, CI script."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_runs_neo4j_5_with_a_healthcheck_and_the_api_against_it() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    neo4j = compose["services"]["neo4j"]
    assert neo4j["image"].startswith("neo4j:5")
    assert "cypher-shell" in " ".join(neo4j["healthcheck"]["test"])
    api = compose["services"]["api"]
    assert api["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert api["environment"]["CRM_GRAPH_STORE"].startswith("neo4j://neo4j:")
    # published on loopback only
    for service in (neo4j, api):
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert (ROOT / "Dockerfile").exists()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make run" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert "crm-graph serve --demo" in makefile
