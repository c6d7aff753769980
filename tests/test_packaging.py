"""The files a user runs before any code: compose file, Makefile, CI script."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

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


def test_the_api_server_does_not_load_the_analytics_stack() -> None:
    # pandas, scikit-learn and networkx are for `train`; the server reads scores as properties
    code = (
        "import sys, crm_graph.api.app, crm_graph.api.cli; "
        "print(sorted(m for m in ('pandas', 'numpy', 'sklearn', 'scipy', 'networkx') "
        "if m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert found.stdout.strip() == "[]", found.stdout


def test_the_wheel_installs_everything_under_one_crm_graph_namespace(tmp_path: Path) -> None:
    # nothing generic (api, graph, loaders, analytics) may land in a user's site-packages
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path)]
    command.append(str(ROOT))
    subprocess.run(command, check=True, capture_output=True)
    (wheel,) = tmp_path.glob("crm_graph-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"crm_graph"}, top
    for package in ("api", "graph", "loaders", "analytics"):
        assert f"crm_graph/{package}/__init__.py" in names
    assert "crm_graph/loaders/reference/people.json" in names  # the generator's data files
    # GraphiQL's built assets ship in the wheel: the page needs no npm and no CDN
    for asset in ("graphiql.js", "graphiql.css"):
        assert f"crm_graph/api/static/graphiql/{asset}" in names
    assert b"crm-graph = crm_graph.api.cli:main" in entry_points
    # the built explore page is package data: serving it needs no npm
    for page_file in ("index.html", "explore.js", "explore.css"):
        assert f"crm_graph/api/static/explore/{page_file}" in names


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_the_lock_file_pins_every_dependency_inside_its_range() -> None:
    # `make run` and `make test` install with the lock file as constraints: a dependency added
    # to pyproject.toml without `make lock` would install unpinned, untested
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    pinned: dict[str, list[str]] = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.split(";")[0].strip().partition("==")
            pinned.setdefault(_name(name), []).append(version)
    for requirement in wanted:
        specifier = SpecifierSet(re.sub(r"^[A-Za-z0-9._-]+(\[[^]]*\])?", "",
                                        requirement.split(";")[0]).strip())  # fmt: skip
        versions = pinned.get(_name(requirement))
        assert versions, f"{requirement} is not in requirements-lock.txt: run `make lock`"
        for version in versions:
            assert specifier.contains(version), f"{requirement}: locked at {version}"
