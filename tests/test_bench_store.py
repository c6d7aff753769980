"""`python -m bench load|api|train|peer --store`: the benches on another store than the embedded
one, run as a user runs them at a tiny size (no timings checked), and the peer's pieces."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.peer import differences, jwt_hs256, normal_crm, normal_peer
from bench.server import REPO
from crm_graph.graph.store import GraphStore
from tests.conftest import NEO4J_URI

needs_neo4j = pytest.mark.skipif(not NEO4J_URI, reason="NEO4J_URI is not set: no Neo4j server")


def bench(*args: str, work: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args, "--work", str(work)],
        capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False, env=os.environ,
    )  # fmt: skip


def only_result(work: Path, pattern: str) -> dict[str, Any]:
    [found] = work.glob(pattern)
    return json.loads(found.read_text())  # type: ignore[no-any-return]


@needs_neo4j
async def test_the_load_bench_measures_raw_forms_and_the_loader_on_neo4j(
    store: GraphStore, tmp_path: Path
) -> None:
    if store.dialect.name != "neo4j":
        pytest.skip("the Neo4j variant of the bench")
    assert NEO4J_URI
    # given a Neo4j database holding something
    await store.write("CREATE (:Customer {id: 'someone'})")
    args = ("load", "--store", NEO4J_URI, "--customers", "40", "--batch-size", "100",
            "--raw-forms", "100x1,100x2")  # fmt: skip
    # when the load bench runs without --wipe, then refuses, and nothing is touched
    refused = bench(*args, work=tmp_path)
    assert refused.returncode == 2
    assert "--wipe" in refused.stderr and "holds 1 nodes" in refused.stderr
    assert (await store.read("MATCH (n) RETURN count(n) AS n"))[0]["n"] == 1
    # when it runs with --wipe
    done = bench(*args, "--wipe", work=tmp_path)
    # then it measured two raw forms and the loader on the same rows, and left the database empty
    assert done.returncode == 0, done.stdout + done.stderr
    summary = only_result(tmp_path, "load-neo4j-40-*.json")
    assert summary["store"].startswith("Neo4j at ")
    sides = [r["side"] for r in summary["results"]]
    assert sides == ["raw UNWIND 100x1", "raw UNWIND 100x2", "crm-graph load 100"]
    assert len({r["rows"] for r in summary["results"]}) == 1
    assert summary["best_raw"] in sides[:2] and summary["ratio_loader_to_raw"] > 0
    assert (await store.read("MATCH (n) RETURN count(n) AS n"))[0]["n"] == 0


@needs_neo4j
async def test_the_api_bench_measures_neo4j(store: GraphStore, tmp_path: Path) -> None:
    if store.dialect.name != "neo4j":
        pytest.skip("the Neo4j variant of the bench")
    assert NEO4J_URI
    done = bench("api", "--store", NEO4J_URI, "--customers", "40", "--seconds", "0.5",
                 "--warmup", "5", "--clients", "2", work=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = only_result(tmp_path, "api-neo4j-40-*.json")
    for side in summary["results"]:
        for phase in ("sequential", "concurrent"):
            assert side[phase]["requests"] > 0 and side[phase]["errors"] == 0, side
    assert summary["floor"]["errors"] == 0
    assert "neo4j" in summary["results"][1]["concurrent"]["cpu_ms_per_request"]
    assert "Neo4j" in done.stdout


def test_the_train_bench_is_a_bench_command_and_refuses_a_bad_store(tmp_path: Path) -> None:
    done = bench("train", "--store", "mysql://x", "--customers", "10", work=tmp_path)
    assert done.returncode == 2
    assert "CRM_GRAPH_STORE must be" in done.stderr and "Traceback" not in done.stderr


def test_the_peer_bench_needs_neo4j(tmp_path: Path) -> None:
    done = bench("peer", "--customers", "10", work=tmp_path)
    assert done.returncode == 1
    assert "the peer serves Neo4j only" in done.stderr and "Traceback" not in done.stderr


@needs_neo4j
@pytest.mark.skipif(not shutil.which("npm"), reason="the peer needs Node.js and npm")
async def test_the_peer_bench_finds_the_same_answers_and_measures_both(
    store: GraphStore, tmp_path: Path
) -> None:
    if store.dialect.name != "neo4j":
        pytest.skip("the peer serves Neo4j")
    assert NEO4J_URI
    # given the peer's npm packages, installed once for the test run
    work = tmp_path / "work"
    cache = REPO / "bench" / "results" / "peer"
    if (cache / "node_modules").exists():
        shutil.copytree(cache, work / "peer", symlinks=True)
    # when the peer bench runs, checking every customer's answer
    done = bench("peer", "--store", NEO4J_URI, "--customers", "40", "--seconds", "0.3",
                 "--blocks", "2", "--warmup", "5", "--check", "40", "--clients", "2",
                 work=work, timeout=1200)  # fmt: skip
    # then the answers matched and all three sides answered every request
    assert done.returncode == 0, done.stdout + done.stderr
    summary = only_result(work, "peer-40-*.json")
    assert summary["answers_checked"] == summary["customers_in_graph"] > 30
    assert summary["peer_versions"]["@neo4j/graphql"].startswith("7.")
    assert [r["side"] for r in summary["results"]] == [
        "raw Cypher", "crm-graph", "Neo4j GraphQL Library"
    ]  # fmt: skip
    for side in summary["results"]:
        for phase in ("sequential", "concurrent"):
            assert side[phase]["requests"] > 0 and side[phase]["errors"] == 0, side
    assert f"answers identical for {summary['answers_checked']} customers" in done.stdout
    assert not (REPO / "bench" / "peer_server" / "node_modules").exists()


CRM = {
    "id": "C1", "name": "Ann", "email": "a@x", "phone": None, "city": "Oslo", "country": "NO",
    "totalSpend": 12.3, "orderCount": 1, "firstPurchaseAt": "2024-01-02T03:04:05.006+00:00",
    "lastPurchaseAt": "2024-01-02T03:04:05.006Z",
    "transactions": {"nodes": [{"id": "T1", "at": "2024-01-02T03:04:05.006Z", "total": 12.3,
                                "lines": {"nodes": [
        {"quantity": 2.0, "amount": 12.3, "product": {"id": "P1", "name": "Tea", "category": "x"}}
    ]}}]},
    "interactions": {"nodes": [{"type": "EMAIL"}, {"type": "CALL"}]},
    "socialTies": {"nodes": [{"type": "KNOWS", "customer": {"id": "C2", "name": "Bo"}}]},
}  # fmt: skip
PEER = {
    "id": "C1", "name": "Ann", "email": "a@x", "phone": None, "city": "Oslo", "country": "NO",
    "transactionsConnection": {"aggregate": {"count": {"nodes": 1}, "node": {
        "total": {"sum": 12.299999999999999}, "at": {"min": "1704164645006",
                                                     "max": "1704164645006"}}}},
    "transactions": [{"id": "T1", "at": "1704164645006", "total": 12.3, "linesConnection": {
        "edges": [{"properties": {"quantity": 2, "amount": 12.3},
                   "node": {"id": "P1", "name": "Tea", "category": "x"}}]}}],
    "interactions": [{"type": "call"}, {"type": "email"}],
    "knows": [{"id": "C2", "name": "Bo"}], "referred": [], "family": [], "colleague": [],
}  # fmt: skip


def test_the_same_360_in_both_forms_compares_equal() -> None:
    assert normal_crm(CRM)["spend"] == Decimal("12.30")
    assert differences(normal_crm(CRM), normal_peer(PEER)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("transactionsConnection", "aggregate", "node", "total", "sum"), 12.31),
        (("transactionsConnection", "aggregate", "node", "at", "max"), "1704164645007"),
        (("transactions", 0, "linesConnection", "edges", 0, "properties", "quantity"), 3),
        (("knows", 0, "id"), "C3"),
        (("interactions", 0, "type"), "visit"),
        (("city",), "Bergen"),
    ],
)
def test_any_difference_is_found(path: tuple[Any, ...], value: Any) -> None:
    peer = json.loads(json.dumps(PEER))
    target = peer
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert differences(normal_crm(CRM), normal_peer(peer))


def test_the_token_is_a_valid_hs256_jwt() -> None:
    import base64
    import hashlib
    import hmac

    token = jwt_hs256("s3cret", {"sub": "bench"})
    head, body, signature = token.split(".")
    pad = lambda part: part + "=" * (-len(part) % 4)  # noqa: E731
    assert json.loads(base64.urlsafe_b64decode(pad(head))) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(base64.urlsafe_b64decode(pad(body))) == {"sub": "bench"}
    expected = hmac.new(b"s3cret", f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(pad(signature)) == expected
