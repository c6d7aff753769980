"""The soak bench at a small size: `python -m bench soak` as a real process (which serves a real
store with `crm-graph serve`) for about 12 seconds of concurrent reads and writes; no errors, and
every acknowledged write found. And the write check itself catches a wrong total, order count,
name or interaction count. No timings are asserted."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from bench.business import business_folder
from bench.server import REPO, api_server, create_admin_key, stop_process, wait_ready
from bench.soak import (
    KINDS,
    Client,
    Kind,
    Writer,
    baseline,
    load_base,
    prepare_store,
    verify_writes,
)
from crm_graph.graph.embedded import EmbeddedServer
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import open_store


def test_a_short_soak_has_no_errors_and_finds_every_write(tmp_path: Path) -> None:
    # given a generated business of 500 customers
    command = [
        sys.executable, "-m", "bench", "soak", "--customers", "500", "--minutes", "0.2",
        "--readers", "4", "--writers", "2", "--warmup", "20", "--work", str(tmp_path),
    ]  # fmt: skip
    # when the soak command runs for 12 seconds, against a server in production mode
    env = {**os.environ, "CRM_GRAPH_ENV": "production"}
    with open(tmp_path / "bench.out", "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pass
        finally:
            stop_process(process, grace=60)  # SIGINT: the bench stops its server itself
    output = (tmp_path / "bench.out").read_text()
    try:
        # then it succeeded, and its results say why
        assert process.returncode == 0, output
        [results] = tmp_path.glob("soak-500-*.json")
        summary = json.loads(results.read_text())
        assert summary["crm_graph_env"] == "production"
        assert summary["errors"] == 0
        assert summary["ok"] is True
        assert summary["server_log_tracebacks"] == 0
        for kind in KINDS:
            assert summary["requests"][kind]["requests"] > 0, kind
            assert summary["requests"][kind]["errors"] == 0, kind
        check = summary["write_check"]
        assert check["ok"] and check["mismatches"] == []
        assert check["customers_checked"] >= 100  # the sampled existing ones and the new ones
        for mark in ("start", "middle", "end"):
            assert summary["rss_mb"][mark]["api_mb"] > 0
            assert summary["rss_mb"][mark]["falkordb_mb"] > 0
        assert "OK: no errors" in output
    finally:
        # and no server is left running on either store
        for store_dir in (tmp_path / "soak-base-500", tmp_path / "soak-store-500"):
            assert not EmbeddedServer(store_dir).stop(), f"a server was left on {store_dir}"


async def test_the_write_check_reports_every_difference(tmp_path: Path) -> None:
    # given a small business served on a copy of its store, and some acknowledged writes
    folder = business_folder(tmp_path, 150, 5.0, 3)
    base = await load_base(tmp_path, folder, 150)
    run_dir = tmp_path / "run"
    prepare_store(base, run_dir)
    store = await open_store(StoreSettings(kind="embedded", data_dir=run_dir))
    try:
        ids = sorted(r["id"] for r in await store.read("MATCH (c:Customer) RETURN c.id AS id"))
        products = [r["id"] for r in await store.read("MATCH (p:Product) RETURN p.id AS id")]
        _, key = await asyncio.to_thread(create_admin_key, run_dir)
        with api_server(run_dir, tmp_path / "server.log") as server:
            await wait_ready(server)
            async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as h:
                kinds = {name: Kind() for name in KINDS}
                client = Client(h, key, kinds)
                ledgers = await baseline(client, store, ids[:6])
                writer = Writer(client, 0, "t", list(ledgers.values()), products, ledgers, 5)
                for _ in range(12):
                    await writer.record_transaction()
                    await writer.record_interaction()
                await writer.upsert_existing()
                await writer.upsert_new()
                assert sum(k.errors for k in kinds.values()) == 0, kinds
                assert len(ledgers) > 6  # the new customers joined the ledgers
                clean = await verify_writes(client, store, ledgers)
                assert clean.ok and clean.customers == len(ledgers), clean.mismatches
                # when the ledgers say something the graph does not
                first, second, third, fourth = ids[:4]
                ledgers[first].spend += 0.25
                ledgers[second].orders += 1
                ledgers[third].interactions -= 1
                ledgers[fourth].name = "someone else"
                checked = await verify_writes(client, store, ledgers)
    finally:
        await store.close()
    # then each difference is reported against its customer, and nothing else
    assert not checked.ok
    assert [line.split(":")[0] for line in checked.mismatches] == sorted(
        [first, second, third, fourth]
    )
    found = "\n".join(checked.mismatches)
    assert "totalSpend" in found and "orderCount" in found
    assert "interactions" in found and "name" in found
