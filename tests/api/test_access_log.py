"""The access log: one structured line per request, through a real `crm-graph serve`, and the
operation name and cost it takes from the GraphQL view."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

from crm_graph.api.access_log import AccessLog, access_log_format, operation_name
from crm_graph.api.app import CrmGraphQL
from crm_graph.graph.errors import ConfigurationError
from tests.helpers import secret_of
from tests.serving import serving

SEARCH = "query FindSomeone($t: String!) { searchCustomers(text: $t, first: 3) { nodes { id } } }"
PERSON = "Zebedee Quackenbush"


def _access_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of the server's standard error that are access log entries."""
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "request" in entry and "status" in entry:
                found.append(entry)
    return found


def test_every_request_leaves_one_json_line_429s_included(tmp_path: Path) -> None:
    # given a real server logging JSON lines, with a rate limit 400 requests go over however
    # slow the machine (60 at once, then one every 10 s)
    env = {"CRM_GRAPH_ACCESS_LOG": "json", "CRM_GRAPH_RATE_LIMIT": "0.1",
           "CRM_GRAPH_RATE_BURST": "60"}  # fmt: skip
    with serving(tmp_path, env) as served:
        key = served.create_key("analyst")
        seen: dict[str, int] = {}
        # when 400 requests are made: named searches with a person's name in their variables,
        # anonymous ones, and some with no key at all
        with httpx.Client(base_url=served.url, timeout=30) as client:
            for n in range(400):
                headers = {"X-Request-ID": f"t-{n}"}
                if n % 10 != 9:
                    headers["Authorization"] = f"Bearer {key}"
                body: dict[str, Any] = (
                    {"query": SEARCH, "variables": {"t": PERSON}}
                    if n % 2 == 0
                    else {"query": "{ __typename }"}
                )
                seen[f"t-{n}"] = client.post("/graphql", json=body, headers=headers).status_code
        served.stop()
        lines = [e for e in _access_lines(served.log) if e["path"] == "/graphql"]
        text = served.log.read_text()
    # then there is exactly one line per request, with the status the client saw
    assert sorted(e["request"] for e in lines) == sorted(seen)
    assert {e["request"]: e["status"] for e in lines} == seen
    statuses = sorted(set(seen.values()))
    assert statuses == [200, 401, 429], statuses  # 429s are there, and logged
    # and each line names the key (by its id), the operation, and how long it took
    key_id = key.split("_")[1]
    for entry in lines:
        n = int(entry["request"].removeprefix("t-"))
        assert entry["method"] == "POST" and isinstance(entry["ms"], float) and entry["ms"] >= 0
        assert entry["key"] == (key_id if n % 10 != 9 else None)
        assert "time" in entry and "cost" in entry
        if entry["status"] == 200:
            assert entry["operation"] == ("FindSomeone" if n % 2 == 0 else None)
    # and nothing personal, no key and no query text is logged
    for secret in (PERSON, "Zebedee", key, secret_of(key), "searchCustomers"):
        assert secret not in text


def test_serve_logs_text_by_default_and_nothing_when_off(tmp_path: Path) -> None:
    # given a server with the default format, then one with the log off
    for setting, expected in ((None, 1), ("off", 0)):
        env = {"CRM_GRAPH_ACCESS_LOG": setting} if setting else {}
        folder = tmp_path / (setting or "default")
        with serving(folder, env) as served:
            key = served.create_key()
            # when one named query is made
            httpx.post(
                f"{served.url}/graphql",
                json={"query": "query Probe { __typename }"},
                headers={"Authorization": f"Bearer {key}", "X-Request-ID": "probe-1"},
            )
            served.stop()
            text = served.log.read_text()
        # then the text line is there (with the key id and the operation), or no line at all
        lines = [line for line in text.splitlines() if "request=probe-1" in line]
        assert len(lines) == expected, text
        if expected:
            assert "POST /graphql 200 " in lines[0] and "operation=Probe cost=0" in lines[0]
            assert f"key={key.split('_')[1]}" in lines[0] and " access " in lines[0]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("CRM_GRAPH_ACCESS_LOG", "yaml"), ("CRM_GRAPH_CORS_ORIGINS", "https://app.example.com/")],
)
def test_serve_refuses_a_malformed_setting_naming_it(
    tmp_path: Path, setting: str, value: str
) -> None:
    # when serve starts with a malformed setting
    done = subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(tmp_path / "d"), "serve",
         "--port", "1"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, setting: value},
    )  # fmt: skip
    # then it stops at once with the usage exit code, one line naming the setting, no traceback
    assert done.returncode == 2, done.stderr
    assert setting in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "d").exists()  # nothing was created


def test_the_format_setting() -> None:
    assert access_log_format({}) == "text"
    assert access_log_format({"CRM_GRAPH_ACCESS_LOG": " JSON "}) == "json"
    with pytest.raises(ConfigurationError, match="CRM_GRAPH_ACCESS_LOG"):
        access_log_format({"CRM_GRAPH_ACCESS_LOG": "verbose"})


@pytest.mark.parametrize(
    ("given", "document", "expected"),
    [
        ("Named", "query Other { a }", "Named"),
        (None, "query Customer360($id: ID!) { a }", "Customer360"),
        (None, "  # a comment\n, mutation Record { a }", "Record"),
        (None, "{ a }", None),
        (None, "query($id: ID!) { a }", None),
        ("not a name; DROP", "query Q { a }", None),  # never free text from the caller
        (None, None, None),
        ("x" * 101, None, None),
    ],
)
def test_the_operation_name(given: Any, document: Any, expected: str | None) -> None:
    assert operation_name(given, document) == expected


@strawberry.type
class _Query:
    hello: str = "world"


class _Cost(SchemaExtension):
    """What the cost model of issue 15 adds to an answer: `extensions.cost`."""

    def get_results(self) -> dict[str, Any]:
        return {"cost": {"requested": 7, "limit": 1000}}


async def test_the_cost_of_an_answer_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    # given the app's GraphQL view behind the access log, on a schema whose answers carry a cost
    view = CrmGraphQL(strawberry.Schema(query=_Query, extensions=[_Cost]))
    app = Starlette(routes=[Route("/graphql", view, methods=["POST"])],
                    middleware=[Middleware(AccessLog, format="json")])  # fmt: skip
    app.state.store = None
    caplog.set_level(logging.INFO, logger="crm_graph.access")
    # when a named query is answered
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.post("/graphql", json={"query": "query Hi { hello }"})
    assert response.json()["extensions"]["cost"]["requested"] == 7
    # then its line holds the operation and the cost
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "crm_graph.access"]
    assert line["operation"] == "Hi" and line["cost"] == 7  # the points it asked for
    assert line["status"] == 200 and line["request"] == response.headers["x-request-id"]
