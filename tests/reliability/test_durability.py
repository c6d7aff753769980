"""Nothing acknowledged is lost, nothing is misread.

- A `crm-graph load` killed with SIGKILL at a random moment (the loader, the embedded store, or
  both) and run again ends with exactly the graph an uninterrupted load of the same folder gives.
- Writes the API acknowledged survive a SIGKILL of the store, with `appendfsync` everysec (the
  default) and always.
- Data directories this release cannot read (an older or newer format, an unreadable marker,
  store files without a marker) are refused with a message naming the directory and what to do.

Real processes, real files, a real embedded FalkorDB in each test's own data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.graph.embedded import EmbeddedServer, _pid_alive
from crm_graph.graph.errors import DataDirError
from crm_graph.graph.settings import StoreSettings, parse_store
from crm_graph.graph.store import GraphStore, open_store
from crm_graph.loaders.synthetic import generate
from tests.conftest import Api
from tests.helpers import stop_embedded_server

CUSTOMERS, BUSINESS_SEED, BATCH_SIZE = 2000, 11, 1000
KILL_SEED = 20240611
KILL_TARGETS = ("loader", "store", "both")
KILL_WINDOWS = ((0.05, 0.3), (0.3, 0.6))
"""Where a kill lands, as fractions of the reference load's time from the store being up to the
loader's exit (the last part, the clean stop, is left out)."""
TIMEOUT = 180.0


def cli(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args]


def load_command(folder: Path, data_dir: Path) -> list[str]:
    rejects = data_dir.parent / f"{data_dir.name}.rejects.csv"
    return cli(
        data_dir,
        "load",
        str(folder),
        "--no-progress",
        "--batch-size",
        str(BATCH_SIZE),
        "--rejects",
        str(rejects),
    )


def store_pid(data_dir: Path) -> int | None:
    record = EmbeddedServer(data_dir).read_record()
    return record.pid if record else None


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.01)


@contextlib.contextmanager
def running(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout and not process.stdout.closed:
            process.communicate(timeout=TIMEOUT)


async def snapshot(data_dir: Path) -> dict[str, Any]:
    """What a load must leave, read through a store opened on the data directory: node counts
    per label, relationship counts per type (line items are CONTAINS, ties KNOWS, FAMILY, ...),
    the sum of all order totals, each order's total, item count and time, each customer's spend
    and order count, and each customer's properties."""
    store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
    try:
        # not the outbox's events: a load resumed after a crash writes the rows it wrote
        # before again, and each write has its event (tests/graph/test_events.py)
        nodes = await store.read(
            "MATCH (n) WHERE NOT n:Event AND NOT n:EventSequence "
            "RETURN labels(n)[0] AS key, count(n) AS n"
        )
        rels = await store.read("MATCH ()-[r]->() RETURN type(r) AS key, count(r) AS n")
        orders = await store.read(
            "MATCH (c:Customer)-[:PLACED]->(t:Transaction) "
            "RETURN t.id AS id, c.id AS customer, t.total AS total, t.itemCount AS items, "
            "t.at AS at"
        )
        customers = await store.read(
            "MATCH (c:Customer) OPTIONAL MATCH (c)-[:PLACED]->(t:Transaction) "
            "RETURN c.id AS id, count(t) AS orders, sum(t.total) AS spend, "
            "properties(c) AS props"
        )
        distinct = await store.read(
            "MATCH (c:Customer) RETURN count(c) AS n, count(DISTINCT c.id) AS ids"
        )
    finally:
        await store.close()
    assert distinct[0]["n"] == distinct[0]["ids"]
    return {
        "nodes": {r["key"]: r["n"] for r in nodes},
        "relationships": {r["key"]: r["n"] for r in rels},
        "revenue": round(sum(r["total"] for r in orders), 4),
        "orders": {
            r["id"]: (r["customer"], round(r["total"], 6), r["items"], r["at"]) for r in orders
        },
        "spend": {r["id"]: (r["orders"], round(r["spend"], 6)) for r in customers},
        "customers": {r["id"]: r["props"] for r in customers},
    }


# -- a load killed at a random moment, then run again ------------------------------------------


@dataclass(frozen=True)
class Reference:
    folder: Path
    state: dict[str, Any]
    write_seconds: float
    """From the store being up (server.json written) to the loader's exit."""


@pytest.fixture(scope="module")
async def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """A generated business and what an uninterrupted load of it leaves in a fresh data dir."""
    work = tmp_path_factory.mktemp("durability")
    folder = work / "business"
    generate(folder, CUSTOMERS, BUSINESS_SEED)
    data_dir = work / "reference"
    try:
        with running(load_command(folder, data_dir)) as loader:
            wait_until(
                lambda: store_pid(data_dir) or loader.poll() is not None,
                TIMEOUT,
                "the reference load to start its store",
            )
            up = time.monotonic()
            _, err = loader.communicate(timeout=TIMEOUT)
            seconds = time.monotonic() - up
        assert loader.returncode == 0, err
        state = await snapshot(data_dir)
    finally:
        stop_embedded_server(data_dir)
    assert state["nodes"]["Customer"] > CUSTOMERS * 0.9 and state["relationships"]["CONTAINS"]
    return Reference(folder, state, seconds)


CRASHES_SURVIVED: dict[str, int] = {}


@pytest.mark.parametrize("window", range(len(KILL_WINDOWS)), ids=["early", "late"])
@pytest.mark.parametrize("target", KILL_TARGETS)
async def test_a_load_killed_at_any_moment_then_run_again_ends_like_an_uninterrupted_load(
    reference: Reference,
    tmp_path: Path,
    target: str,
    window: int,
) -> None:
    data_dir = tmp_path / "data"
    low, high = KILL_WINDOWS[window]
    delay = random.Random(f"{KILL_SEED}-{target}-{window}").uniform(low, high)
    delay *= reference.write_seconds
    try:
        # given a load of the business, killed with SIGKILL `delay` seconds after its store is up
        with running(load_command(reference.folder, data_dir)) as loader:
            wait_until(
                lambda: store_pid(data_dir) or loader.poll() is not None,
                TIMEOUT,
                "the load to start its store",
            )
            server = store_pid(data_dir)
            assert server is not None, loader.communicate()[1]
            time.sleep(delay)
            assert loader.poll() is None, "the load finished before the kill: nothing was tested"
            if target in ("store", "both"):
                os.kill(server, signal.SIGKILL)
            if target in ("loader", "both"):
                os.kill(loader.pid, signal.SIGKILL)
            _, err = loader.communicate(timeout=TIMEOUT)
        if target == "store":
            # the loader saw its store die and said so, without a traceback
            assert loader.returncode == 1, err
            assert "crm-graph load:" in err and "Traceback" not in err, err
        else:
            assert loader.returncode == -signal.SIGKILL
        if target == "loader":
            assert _pid_alive(server)  # the store outlives its client; the next load reuses it
        else:
            wait_until(lambda: not _pid_alive(server), 30, "the killed store to be gone")

        # when the same load runs again to completion
        again = subprocess.run(
            load_command(reference.folder, data_dir),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        # it stopped the store it used, as the last one to let go of it
        assert store_pid(data_dir) is None and not _pid_alive(server)

        # then the graph is exactly what an uninterrupted load gives
        state = await snapshot(data_dir)
    finally:
        stop_embedded_server(data_dir)
    for part in ("nodes", "relationships", "revenue", "spend", "orders", "customers"):
        assert state[part] == reference.state[part], part
    CRASHES_SURVIVED[target] = CRASHES_SURVIVED.get(target, 0) + 1
    killed = "loader and its store" if target == "both" else target
    print(f"SIGKILL of the {killed} {delay:.2f}s after the store was up, survived; "
          f"crashes survived so far: {CRASHES_SURVIVED}")  # fmt: skip


# -- writes the API acknowledged, then a SIGKILL of the store ------------------------------------

UPSERT = """
mutation($input: [CustomerInput!]!) {
  upsertCustomers(input: $input) { __typename ... on UpsertCustomersSuccess { customers { id } } }
}
"""
RECORD = """
mutation($input: TransactionInput!) {
  recordTransaction(input: $input) {
    __typename ... on RecordTransactionSuccess { transaction { id total } }
  }
}
"""
LINK = """
mutation($input: LinkCustomersInput!) {
  linkCustomers(input: $input) { __typename }
}
"""
ACKNOWLEDGED = 40


@pytest.mark.parametrize("appendfsync", ["everysec", "always"])
async def test_every_acknowledged_write_survives_a_sigkill_of_the_store(
    tmp_path: Path, appendfsync: str
) -> None:
    settings = parse_store(
        "embedded", data_dir=tmp_path / "data", env={"CRM_GRAPH_APPENDFSYNC": appendfsync}
    )
    store = await open_store(settings)
    pid = store_pid(settings.data_dir)
    assert pid is not None
    try:
        config = await store._db.connection.config_get("appendfsync")  # type: ignore[attr-defined]
        assert config == {"appendfsync": appendfsync}
        # given writes acknowledged through the real app, and statements sent to the store itself
        app = create_app(settings, store=store, rate_limiter=None)
        _, key = await create_key(store, Role.ADMIN, "durability")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            api = Api(client, key)
            for i in range(ACKNOWLEDGED):
                customer = {"id": f"d{i:03d}", "name": f"Customer {i}", "city": "Lyon"}
                done = await api.data(UPSERT, input=[customer])
                assert done["upsertCustomers"]["__typename"] == "UpsertCustomersSuccess"
                order = {
                    "id": f"o{i:03d}",
                    "customerId": f"d{i:03d}",
                    "at": "2024-05-01T10:00:00Z",
                    "lines": [{"amount": i + 1}],
                }
                done = await api.data(RECORD, input=order)
                assert done["recordTransaction"]["transaction"]["total"] == i + 1
                if i:
                    tie = {"sourceId": f"d{i:03d}", "targetId": f"d{i - 1:03d}"}
                    done = await api.data(LINK, input=tie)
                    assert done["linkCustomers"]["__typename"] == "LinkCustomersSuccess"
                await store.write(
                    "MATCH (c:Customer {id: $id}) SET c.direct = $i", {"id": f"d{i:03d}", "i": i}
                )
        # when the store is killed at once, well within the second between two fsyncs
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _pid_alive(pid), 30, "the killed store to be gone")
    finally:
        await store.close()
    # then a new store on the same files holds every acknowledged write
    store = await open_store(settings)
    try:
        assert store_pid(settings.data_dir) != pid
        rows = await store.read(
            "MATCH (c:Customer)-[:PLACED]->(t:Transaction) "
            "RETURN c.id AS id, c.name AS name, c.direct AS direct, t.total AS total ORDER BY id"
        )
        assert rows == [
            {"id": f"d{i:03d}", "name": f"Customer {i}", "direct": i, "total": i + 1}
            for i in range(ACKNOWLEDGED)
        ]
        ties = await store.read("MATCH (:Customer)-[k:KNOWS]->(:Customer) RETURN count(k) AS n")
        assert ties == [{"n": ACKNOWLEDGED - 1}]
        keys = await store.read("MATCH (k:ApiKey) RETURN count(k) AS n")
        assert keys == [{"n": 1}]
    finally:
        await store.close()


# -- data directories this release cannot read ---------------------------------------------------


def refused_by_the_cli(data_dir: Path) -> str:
    """`crm-graph status` on the directory: a usage error with a message, no traceback, no
    server started. Returns the message."""
    done = subprocess.run(
        cli(data_dir, "status"), capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.startswith("crm-graph status: ")
    assert not (data_dir / "server.json").exists() and not (data_dir / "falkordb.log").exists()
    return done.stderr


def with_store_files(data_dir: Path) -> Path:
    """A data directory holding an append-only log as Redis 7+ writes it, and a snapshot."""
    aof = data_dir / "falkordb" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "crm.aof.1.base.rdb").write_bytes(b"REDIS0011\xfa\x09redis-ver")
    (aof / "crm.aof.1.incr.aof").write_bytes(b"*1\r\n$5\r\nMULTI\r\n")
    (aof / "crm.aof.manifest").write_text(
        "file crm.aof.1.base.rdb seq 1 type b\nfile crm.aof.1.incr.aof seq 1 type i\n"
    )
    (data_dir / "falkordb" / "dump.rdb").write_bytes(b"REDIS0011")
    return data_dir


def files_of(data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data_dir)): p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("found", "says"),
    [(0, "an older format"), (2, "a newer format")],
    ids=["older", "newer"],
)
def test_a_data_dir_in_another_format_is_refused_untouched(
    tmp_path: Path, found: int, says: str
) -> None:
    data_dir = with_store_files(tmp_path / "data")
    marker = {"format": found, "created_by": "0.0.9"}
    (data_dir / "crm-graph.json").write_text(json.dumps(marker))
    before = files_of(data_dir)
    message = refused_by_the_cli(data_dir)
    assert str(data_dir.resolve()) in message
    assert f"crm-graph 0.0.9 in data format {found}" in message and says in message
    assert "load your files into a new data directory" in message
    assert files_of(data_dir) == before


@pytest.mark.parametrize(
    "marker",
    [b'{"format": 1', b"", b"[1]", b'{"format": "1"}', b'{"format": true}', b"{}", b"\xff\xfe"],
    ids=["truncated", "empty", "not-an-object", "text", "boolean", "no-format", "not-utf8"],
)
async def test_an_unreadable_marker_beside_store_files_is_refused_untouched(
    tmp_path: Path, marker: bytes
) -> None:
    data_dir = with_store_files(tmp_path / "data")
    (data_dir / "crm-graph.json").write_bytes(marker)
    before = files_of(data_dir)
    try:
        opened = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
    except DataDirError as refused:
        message = str(refused)
    else:
        await opened.close()
        pytest.fail(f"{data_dir} was opened with the marker {marker!r}")
    assert f"{data_dir.resolve() / 'crm-graph.json'} is unreadable" in message
    assert "refusing to open it" in message and "new data directory" in message
    assert files_of(data_dir) == before
    assert not (data_dir / "server.json").exists()


def test_the_cli_refuses_an_unreadable_marker_with_a_message(tmp_path: Path) -> None:
    data_dir = with_store_files(tmp_path / "data")
    (data_dir / "crm-graph.json").write_text('{"format": 1')
    message = refused_by_the_cli(data_dir)
    assert "crm-graph.json is unreadable" in message and str(data_dir.resolve()) in message


def test_store_files_without_a_marker_are_refused_untouched(tmp_path: Path) -> None:
    data_dir = with_store_files(tmp_path / "data")
    before = files_of(data_dir)
    message = refused_by_the_cli(data_dir)
    assert f"{data_dir.resolve()} holds store files" in message
    assert "not written by crm-graph" in message and "Use another data directory" in message
    assert files_of(data_dir) == before


async def test_a_marker_left_unreadable_by_a_crash_before_any_store_file_is_rewritten(
    tmp_path: Path,
) -> None:
    # given a data directory whose very first start died while writing its marker
    data_dir = tmp_path / "data"
    (data_dir / "falkordb").mkdir(parents=True)
    (data_dir / "crm-graph.json").write_text("")
    store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
    try:
        await store.write("CREATE (:Customer {id: 'first'})")
    finally:
        await store.close()
    assert json.loads((data_dir / "crm-graph.json").read_text())["format"] == 1


async def test_a_data_dir_written_by_an_earlier_release_of_the_same_format_opens(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    store: GraphStore = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
    try:
        await store.write("CREATE (:Customer {id: 'kept', name: 'Zoë'})")
    finally:
        await store.close()
    marker = {"format": 1, "created_by": "0.0.9"}
    (data_dir / "crm-graph.json").write_text(json.dumps(marker))
    store = await open_store(StoreSettings(kind="embedded", data_dir=data_dir))
    try:
        rows = await store.read("MATCH (c:Customer) RETURN c.id AS id, c.name AS name")
        assert rows == [{"id": "kept", "name": "Zoë"}]
    finally:
        await store.close()
    assert json.loads((data_dir / "crm-graph.json").read_text()) == marker
