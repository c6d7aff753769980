"""Partner access through a real `crm-graph serve`: keys made, rotated and listed with the command
line, expiry, the audit trail (API and `crm-graph audit`), erasure of the audit's link to a
person, and `crm-graph customers export`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.server import api_server, wait_ready
from tests.helpers import write_csv


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=300, check=check,
    )  # fmt: skip


def new_key(data_dir: Path, *args: str) -> tuple[str, str]:
    lines = cli(data_dir, "keys", "create", *args).stdout.strip().splitlines()
    return next(line.split()[1] for line in lines if line.startswith("id ")), lines[-1]


def listed(data_dir: Path) -> dict[str, dict[str, Any]]:
    keys = json.loads(cli(data_dir, "keys", "list", "--json").stdout)
    return {k["id"]: k for k in keys}


async def ask(client: httpx.AsyncClient, key: str, query: str, request_id: str = "") -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    if request_id:
        headers["X-Request-ID"] = request_id
    return await client.post("/graphql", json={"query": query}, headers=headers)


def load_business(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "in"
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": "Ann Acme", "email": "ann@x.org", "source_system": "acme"},
        {"customer_id": "c2", "name": "Bob Shop", "email": "bob@x.org", "source_system": "shop"},
        {"customer_id": "c3", "name": "Cy Acme", "email": "cy@x.org", "source_system": "acme"},
    ])  # fmt: skip
    write_csv(folder / "products.csv", [{"product_id": "p1", "name": "Mug", "price": "5"}])
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-01-01",
         "product_id": "p1", "quantity": "2", "unit_price": "5"},
    ])  # fmt: skip
    write_csv(folder / "interactions.csv", [
        {"interaction_id": "i1", "customer_id": "c1", "timestamp": "2024-01-02", "type": "call",
         "subject": "Where is my mug?", "sentiment": "-0.5"},
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": "c1", "target_customer_id": "c2"},
        {"source_customer_id": "c1", "target_customer_id": "c3", "type": "FAMILY"},
    ])  # fmt: skip
    cli(data_dir, "load", str(folder), "--no-progress")


async def test_expiry_rotation_and_the_audit_trail_through_the_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_business(tmp_path, data_dir)
    _, admin = new_key(data_dir, "--role", "admin", "--name", "ops")
    partner_id, partner = new_key(
        data_dir, "--role", "partner", "--name", "acme", "--customers", "source:acme",
        "--scope", "partner,ties", "--expires", "2030-01-01",
    )  # fmt: skip
    short_id, short = new_key(data_dir, "--role", "analyst", "--name", "brief", "--expires", "3s")
    # keys list shows scopes, customers and expiry
    shown = listed(data_dir)[partner_id]
    assert shown["scopes"] == "orders,profile,ties"
    assert shown["customers"] == "source:acme"
    assert shown["expires"] == "2030-01-01T00:00:00Z"
    assert shown["last_used_at"] is None

    with api_server(data_dir, tmp_path / "serve.log") as server:
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as client:
            # a partner limited to acme reads c1, and c2 does not exist for it
            answer = await ask(
                client, partner,
                '{ a: customer(id: "c1") { id name socialTies { nodes { customer { id } } } } '
                'b: customer(id: "c2") { id } }',
                request_id="req-partner-1",
            )  # fmt: skip
            data = answer.json()["data"]
            assert data["b"] is None
            assert data["a"]["name"] == "Ann Acme"
            assert [t["customer"]["id"] for t in data["a"]["socialTies"]["nodes"]] == ["c3"]

            # the audit trail names the key, the request and the customers read, no values
            log = await ask(
                client, admin,
                '{ auditLog(customerId: "c1") '
                '{ nodes { keyId operation customerIds requestId } } }',
            )  # fmt: skip
            entries = log.json()["data"]["auditLog"]["nodes"]
            assert entries[0] == {
                "keyId": partner_id, "operation": "query customer",
                "customerIds": ["c1", "c3"], "requestId": "req-partner-1",
            }  # fmt: skip
            assert "Ann" not in log.text and "ann@x.org" not in log.text

            # an expired key is refused with a reason
            until = datetime.fromisoformat(
                listed(data_dir)[short_id]["expires"].replace("Z", "+00:00")
            )
            await asyncio.sleep(max(0.0, until.timestamp() - time.time()) + 0.5)
            refused = await ask(client, short, "{ __typename }")
            assert refused.status_code == 401
            assert refused.json()["errors"][0]["message"] == "this API key has expired"


async def test_rotation_keeps_the_old_key_for_the_overlap_then_ends_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_business(tmp_path, data_dir)
    old_id, old = new_key(data_dir, "--role", "partner", "--customers", "source:acme")
    # (without the key cache: an expiry then takes effect on the very next request; with it,
    # within its second, which tests/api/test_key_cache.py checks)
    no_cache = {"CRM_GRAPH_KEY_CACHE_SECONDS": "0"}
    with api_server(data_dir, tmp_path / "serve.log", env=no_cache) as server:
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as client:
            query = '{ customer(id: "c1") { id } }'
            assert (await ask(client, old, query)).json()["data"]["customer"] == {"id": "c1"}
            # when the key is rotated with an overlap, both keys work
            lines = cli(data_dir, "keys", "rotate", old_id, "--overlap", "1h").stdout.splitlines()
            new_id, new = lines[0].split()[1], lines[-1]
            assert f"replaces {old_id}" in lines[1]
            for key in (old, new):
                assert (await ask(client, key, query)).json()["data"]["customer"] == {"id": "c1"}
            # the new key has the old one's rights (customers too)
            other = await ask(client, new, '{ customer(id: "c2") { id } }')
            assert other.json()["data"]["customer"] is None
            keys = listed(data_dir)
            assert keys[new_id]["customers"] == "source:acme"
            assert keys[new_id]["scopes"] == keys[old_id]["scopes"]
            assert keys[old_id]["expires"]
            # rotated again without overlap, the previous key stops at once
            lines = cli(data_dir, "keys", "rotate", new_id, "--overlap", "0s").stdout.splitlines()
            newest = lines[-1]
            refused = await ask(client, new, query)
            assert refused.status_code == 401
            assert refused.json()["errors"][0]["message"] == "this API key has expired"
            assert (await ask(client, newest, query)).status_code == 200
            # an expired key cannot be rotated
            again = cli(data_dir, "keys", "rotate", new_id, check=False)
            assert again.returncode == 1 and "no active API key" in again.stderr
            # last use is on the list
            assert listed(data_dir)[old_id]["last_used_at"] is not None


async def test_erasure_leaves_the_audit_without_the_person(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_business(tmp_path, data_dir)
    _, admin = new_key(data_dir, "--role", "admin")
    with api_server(data_dir, tmp_path / "serve.log") as server:
        await wait_ready(server)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as client:
            await ask(client, admin, '{ customer(id: "c1") { name } }', request_id="read-1")
            # (the server writes its audit entries every second: another process sees an entry
            # once written, CRM_GRAPH_AUDIT_FLUSH_SECONDS)
            deadline = time.monotonic() + 10
            while True:
                before = json.loads(cli(data_dir, "audit", "--customer", "c1", "--json").stdout)
                if before or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert [e["request_id"] for e in before] == ["read-1"]
            # when c1 is erased
            erased = await ask(
                client, admin,
                'mutation { eraseCustomer(id: "c1") { '
                "... on EraseCustomerSuccess { anonymousId } } }",
                request_id="erase-1",
            )  # fmt: skip
            anonymous = erased.json()["data"]["eraseCustomer"]["anonymousId"]
    # then no audit entry names c1; the entries name the anonymous id instead
    everything = cli(data_dir, "audit", "--json").stdout
    assert '"c1"' not in everything
    entries = json.loads(cli(data_dir, "audit", "--customer", anonymous, "--json").stdout)
    assert {e["request_id"] for e in entries} == {"read-1", "erase-1"}


def test_customers_export_holds_every_stored_property(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load_business(tmp_path, data_dir)
    out = tmp_path / "c1.json"
    cli(data_dir, "customers", "export", "c1", "-o", str(out))
    exported = json.loads(out.read_text(encoding="utf-8"))
    text = json.dumps(exported)
    # every property of c1, of every relationship it has and of every node hanging from it but
    # other customers (their data is theirs: a tie names them by id) is in the export
    rows = json.loads(
        cli(
            data_dir, "query",
            "MATCH (c:Customer {id: 'c1'}) OPTIONAL MATCH (c)-[r]-(n) "
            "RETURN properties(c) AS c, collect(properties(r)) AS r, "
            "collect(CASE WHEN n:Customer THEN null ELSE properties(n) END) AS n",
            "--json",
        ).stdout
    )  # fmt: skip
    stored = [rows[0]["c"], *rows[0]["r"], *rows[0]["n"]]
    lines = json.loads(
        cli(data_dir, "query", "MATCH (:Transaction {id: 't1'})-[l]->(p) "
            "RETURN properties(l) AS l, properties(p) AS p", "--json").stdout
    )  # fmt: skip
    stored += [lines[0]["l"], lines[0]["p"]]
    for properties in stored:
        for name, value in properties.items():
            assert json.dumps(value) in text, (name, value)
    assert exported["customer"]["email"] == "ann@x.org"
    assert [o["id"] for o in exported["orders"]] == ["t1"]
    assert exported["contacts"][0]["subject"] == "Where is my mug?"
    assert {t["customerId"] for t in exported["ties"]} == {"c2", "c3"}
    assert exported["sourceRecords"][0]["system"] == "acme"
    unknown = cli(data_dir, "customers", "export", "nobody", check=False)
    assert unknown.returncode == 1 and "no customer" in unknown.stderr


def test_bad_key_rights_are_refused_with_what_was_wrong(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()  # the store's folder: refusing to create one is another test's
    cases = {
        ("--scope", "profile,everything"): "unknown scope 'everything'",
        ("--customers", "region:eu"): "expected source:SYSTEM",
        ("--customers", "source:"): "names nothing after source:",
        ("--expires", "2001-01-01"): "expiry must be in the future",
        ("--expires", "soon"): "neither an ISO 8601 date or time nor a duration",
        ("--scope", "partner,write", "--customers", "source:acme"): "write reach every customer",
    }
    for args, message in cases.items():
        done = cli(data_dir, "keys", "create", "--role", "partner", *args, check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert json.loads(cli(data_dir, "keys", "list", "--json").stdout) == []
