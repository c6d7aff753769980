"""Webhooks as a user runs them: `crm-graph webhooks add` (a real process), a real `crm-graph
serve` delivering to a real receiver on 127.0.0.1, writes over HTTP; on the embedded store, and
on Neo4j when NEO4J_URI is set. Every acknowledged write's
event arrives, in order, signed so that the documented Python and JavaScript recipes verify it;
a serve SIGKILLed in the middle of a delivery, then started again, delivers that event again
(same delivery id) and every later one: none lost."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench.server import _cli, api_server, create_admin_key, wait_ready
from crm_graph.graph.events import events_after
from crm_graph.graph.settings import parse_store
from crm_graph.graph.store import open_store
from tests.helpers import stop_embedded_server
from tests.receiver import Receiver, until
from tests.serving import serve_store

UPSERT = """
mutation($input: [CustomerInput!]!) {
  upsertCustomers(input: $input) { __typename }
}
"""
FAST = {
    "CRM_GRAPH_WEBHOOK_POLL": "0.05",
    "CRM_GRAPH_WEBHOOK_RETRY_BASE": "0.05",
    "CRM_GRAPH_WEBHOOK_RETRY_MAX": "0.2",
    "CRM_GRAPH_WEBHOOK_TIMEOUT": "20",
    "CRM_GRAPH_WEBHOOK_LEASE": "1",
}
"""Small waits (the test polls with deadlines); a time-out longer than the slow receiver's."""

JS_RECIPE = r"""
const crypto = require("crypto");
const fs = require("fs");
const [secret, bodyFile, header] = process.argv.slice(2);
const raw = fs.readFileSync(bodyFile);  // the raw bytes, before any JSON parsing
const expected = "sha256=" + crypto.createHmac("sha256", secret).update(raw).digest("hex");
const ok = expected.length === header.length &&
  crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(header));
console.log(ok ? "valid" : "invalid");
"""
"""The README's JavaScript recipe, as a receiver would write it."""


def crm_graph(
    data_dir: Path, *args: str, store: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`crm-graph ARGS` on the embedded store in `data_dir`, or on `store` (a Neo4j URI)."""
    return subprocess.run(_cli(data_dir, *args, store=store), capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def python_recipe(secret: str, raw: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def post(client: httpx.AsyncClient, key: str, customer: str) -> None:
    response = await client.post(
        "/graphql",
        json={"query": UPSERT, "variables": {"input": [{"id": customer, "name": "N"}]}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess"


@pytest.mark.parametrize("engine", ["embedded", "neo4j"])
async def test_serve_delivers_every_event_and_resumes_after_a_sigkill(
    tmp_path: Path, engine: str
) -> None:
    store = await serve_store(engine)
    data_dir = tmp_path / "data"
    receiver = Receiver()
    await receiver.start()
    try:
        _, key = await asyncio.to_thread(create_admin_key, data_dir, "webhooks", store=store)
        # given a webhook added with the command line (its secret generated, shown once)
        added = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "add", receiver.url,
            "--events", "customer.created,customer.updated", store=store,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        hook_id = added.stdout.split()[1]
        secret = added.stdout.strip().splitlines()[-1]
        assert secret.startswith("whsec_")
        listed = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "list", "--json", store=store
        )
        assert [h["id"] for h in json.loads(listed.stdout)] == [hook_id]
        assert secret not in listed.stdout

        # and a receiver slow enough that a delivery is under way when serve is killed
        receiver.delay = 5.0
        with api_server(data_dir, tmp_path / "serve1.log", env=FAST, store=store) as server:
            await wait_ready(server)
            async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as c:
                for n in range(3):
                    await post(c, key, f"k{n}")
            # when serve is SIGKILLed while the first delivery waits for its answer
            await until(lambda: receiver.arrivals >= 1, 60)
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(30)
        assert receiver.arrivals == 1

        # then, started again, it delivers that event again and every later one
        receiver.delay = 0.0
        with api_server(data_dir, tmp_path / "serve2.log", env=FAST, store=store) as server:
            await wait_ready(server)
            async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as c:
                for n in range(3, 5):
                    await post(c, key, f"k{n}")
            await until(lambda: len({r.json["sequence"] for r in receiver.accepted()}) >= 5, 90)
        # every arrival recorded: the interrupted one only once its slow answer is done (5 s after
        # it arrived, nobody left to read it), which a quick restart can beat
        await until(lambda: len(receiver.received) == receiver.arrivals, 30)
        opened = await open_store(parse_store(store, data_dir=data_dir))
        try:
            written = await events_after(opened, 0)
        finally:
            await opened.close()
        assert [(e.type, e.customer_ids) for e in written] == [
            ("customer.created", (f"k{n}",)) for n in range(5)
        ]
        accepted = receiver.accepted()
        assert list(dict.fromkeys(r.json["sequence"] for r in accepted)) == [
            e.sequence for e in written
        ]
        # the interrupted delivery came again under the same id
        first = [r for r in receiver.received if r.json["sequence"] == written[0].sequence]
        assert len(first) >= 2
        assert {r.headers["x-crm-graph-delivery"] for r in first} == {f"{hook_id}-1"}
        # and every body verifies with the documented recipes
        for r in accepted:
            assert python_recipe(secret, r.body, r.headers["x-crm-graph-signature"])
        if shutil.which("node"):
            script = tmp_path / "verify.js"
            script.write_text(JS_RECIPE)
            body = tmp_path / "body.json"
            body.write_bytes(accepted[-1].body)
            header = accepted[-1].headers["x-crm-graph-signature"]
            for secret_given, verdict in ((secret, "valid"), (secret + "x", "invalid")):
                ran = subprocess.run(
                    ["node", str(script), secret_given, str(body), header],
                    capture_output=True, text=True, timeout=60, check=True,
                )  # fmt: skip
                assert ran.stdout.strip() == verdict

        # and the command line shows the deliveries, replays and removes
        shown = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "deliveries", hook_id, "--json", store=store
        )
        deliveries = json.loads(shown.stdout)
        assert [d["sequence"] for d in deliveries] == [5, 4, 3, 2, 1]
        assert all(d["status"] == "delivered" for d in deliveries)
        assert deliveries[-1]["attempts"] >= 1
        replayed = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "replay", hook_id, "--from", "4", store=store
        )
        assert replayed.returncode == 0, replayed.stderr
        listed = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "list", "--json", store=store
        )
        assert json.loads(listed.stdout)[0]["acknowledged"] == 3
        unknown = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "remove", "wh_nope", store=store
        )
        assert unknown.returncode == 1 and "no webhook has the id 'wh_nope'" in unknown.stderr
        removed = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "remove", hook_id, store=store
        )
        assert removed.returncode == 0, removed.stderr
        bad = await asyncio.to_thread(
            crm_graph, data_dir, "webhooks", "add", "ftp://x", "--events", "customer.created",
            store=store,
        )  # fmt: skip
        assert bad.returncode == 2 and "is not an http:// or https:// URL" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        await receiver.stop()
        if store is None:
            stop_embedded_server(data_dir)


@pytest.mark.parametrize("command", [["add"], ["list"], ["remove"], ["deliveries"], ["replay"],
                                     ["run"]])  # fmt: skip
def test_every_webhooks_command_has_help(command: list[str]) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "webhooks", *command, "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert shown.returncode == 0 and "usage: crm-graph webhooks" in shown.stdout
