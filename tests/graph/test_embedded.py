"""The embedded FalkorDB: started by the app, durable, shared between processes, and robust to
a crash of either side."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from crm_graph.graph.embedded import EmbeddedServer, ServerRecord, _pid_alive
from crm_graph.graph.errors import DataDirError, QueryError, ReadOnlyViolation, StoreUnavailable
from crm_graph.graph.falkordb_store import FalkorStore
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store


def settings_for(data_dir: Path) -> StoreSettings:
    return StoreSettings(kind="embedded", data_dir=data_dir)


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a daemon's parent may be slow to reap it)."""
    return _pid_alive(pid)


async def test_bootstrap_is_idempotent_and_ids_are_unique(store: GraphStore) -> None:
    await store.bootstrap()
    await store.bootstrap()
    await store.write("CREATE (:Customer {id: 'c1'})")
    with pytest.raises(QueryError):
        await store.write("CREATE (:Customer {id: 'c1'})")
    rows = await store.read("MATCH (c:Customer) RETURN count(c) AS n")
    assert rows == [{"n": 1}]


async def test_reads_cannot_write(store: GraphStore) -> None:
    with pytest.raises(ReadOnlyViolation):
        await store.read("CREATE (:Customer {id: 'sneaky'})")
    assert await store.read("MATCH (c:Customer) RETURN count(c) AS n") == [{"n": 0}]


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir))
    await store.write(
        "UNWIND range(1, 500) AS i CREATE (:Customer {id: toString(i), name: '王' + toString(i)})"
    )
    pid = EmbeddedServer(data_dir).read_record().pid  # type: ignore[union-attr]
    await store.close()
    # the last user stopped the server cleanly
    assert not pid_alive(pid)
    assert not (data_dir / "server.json").exists()

    store = await open_store(settings_for(data_dir))
    try:
        rows = await store.read("MATCH (c:Customer {id: '42'}) RETURN c.name AS name")
        assert rows == [{"name": "王42"}]
        assert await store.read("MATCH (c:Customer) RETURN count(c) AS n") == [{"n": 500}]
    finally:
        await store.close()


async def test_a_second_process_uses_the_running_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir))
    try:
        await store.write("CREATE (:Customer {id: 'shared'})")
        record = EmbeddedServer(data_dir).read_record()
        assert record is not None
        # when another process (the CLI) opens the same data directory
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "crm_graph.api.cli",
                "--data-dir",
                str(data_dir),
                "query",
                "MATCH (c:Customer) RETURN c.id AS id",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        # then it read through the same server, and left it running for us
        assert json.loads(out.stdout) == [{"id": "shared"}]
        assert EmbeddedServer(data_dir).read_record() == record
        assert pid_alive(record.pid)
        assert await store.read("MATCH (c:Customer) RETURN count(c) AS n") == [{"n": 1}]
    finally:
        await store.close()
    assert not pid_alive(record.pid)


async def test_a_killed_server_is_detected_and_replaced_without_losing_writes(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir))
    await store.write("UNWIND range(1, 100) AS i CREATE (:Customer {id: toString(i)})")
    record = EmbeddedServer(data_dir).read_record()
    assert record is not None
    # when the server dies hard (no chance to save), right after acknowledging the writes
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(record.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    await store.close()
    assert (data_dir / "server.json").exists()  # the record it left is stale now

    # then the next open starts a new server on the same files, and nothing is lost
    store = await open_store(settings_for(data_dir))
    try:
        fresh = EmbeddedServer(data_dir).read_record()
        assert fresh is not None and fresh.pid != record.pid
        assert await store.read("MATCH (c:Customer) RETURN count(c) AS n") == [{"n": 100}]
    finally:
        await store.close()


async def test_a_record_naming_a_reused_pid_is_stale(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir))
    await store.close()
    # given a server.json whose pid now belongs to another program (this test process)
    (data_dir / "server.json").write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "unix_socket": str(data_dir / "falkordb.sock"),
                "port": None,
                "started_by": 1,
                "started_at": 0.0,
            }
        )
    )
    store = await open_store(settings_for(data_dir))
    try:
        record = EmbeddedServer(data_dir).read_record()
        assert record is not None and record.pid != os.getpid()
        assert pid_alive(os.getpid())  # and we were not harmed
    finally:
        await store.close()


async def test_a_long_data_dir_path_falls_back_to_loopback_tcp(tmp_path: Path) -> None:
    data_dir = tmp_path / ("x" * 60) / ("y" * 60) / "data"
    store = await open_store(settings_for(data_dir))
    try:
        record = EmbeddedServer(data_dir).read_record()
        assert record is not None and record.unix_socket is None and record.port
        await store.write("CREATE (:Customer {id: 'tcp'})")
        assert await store.read("MATCH (c:Customer) RETURN c.id AS id") == [{"id": "tcp"}]
    finally:
        await store.close()


async def test_a_data_dir_of_another_format_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "crm-graph.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(DataDirError, match="data format 99"):
        await open_store(settings_for(data_dir))

    foreign = tmp_path / "foreign"
    (foreign / "falkordb").mkdir(parents=True)
    (foreign / "falkordb" / "dump.rdb").write_bytes(b"REDIS0011")
    with pytest.raises(DataDirError, match="not written by crm-graph"):
        await open_store(settings_for(foreign))


async def test_the_server_listens_on_no_network_interface(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir))
    try:
        record = EmbeddedServer(data_dir).read_record()
        assert record is not None and record.unix_socket
        assert oct(os.stat(data_dir).st_mode & 0o777) == "0o700"
        config = await store._db.connection.config_get("port")  # type: ignore[attr-defined]
        assert config["port"] == "0"  # TCP off: only the unix socket, mode 0700
    finally:
        await store.close()


async def test_a_statement_sent_while_the_server_is_busy_runs_once_it_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a server busy with a script (Redis answers BUSY to every other command, as it does
    # while FalkorDB prepares to fork for an AOF rewrite)
    data_dir = tmp_path / "data"
    store = await open_store(settings_for(data_dir))
    record = EmbeddedServer(data_dir).read_record()
    assert record is not None
    admin = redis.Redis(**record.connection_kwargs())
    admin.config_set("busy-reply-threshold", 10)  # BUSY after 10 ms of script, not 5 s
    blocker = threading.Thread(target=_run_forever, args=(record.connection_kwargs(),),
                               daemon=True)  # fmt: skip
    try:
        blocker.start()
        _wait_until_busy(admin)
        # when a write is sent, and the script ends half a second later
        threading.Timer(0.5, lambda: admin.script_kill()).start()
        started = time.monotonic()
        await store.write("CREATE (:Customer {id: 'c1'})")
        # then the write waited for the server and ran once
        assert time.monotonic() - started >= 0.3
        assert await store.read("MATCH (c:Customer) RETURN count(c) AS n") == [{"n": 1}]
        # and a server still busy after the wait is an error saying so
        blocker = threading.Thread(target=_run_forever, args=(record.connection_kwargs(),),
                                   daemon=True)  # fmt: skip
        blocker.start()
        _wait_until_busy(admin)
        monkeypatch.setattr("crm_graph.graph.falkordb_store.BUSY_WAIT_SECONDS", 0.3)
        with pytest.raises(QueryError, match="BUSY"):
            await store.read("MATCH (c:Customer) RETURN count(c) AS n")
        admin.script_kill()
        assert await store.read("MATCH (c:Customer) RETURN count(c) AS n") == [{"n": 1}]
    finally:
        admin.close()
        await store.close()


def _wait_until_busy(admin: redis.Redis) -> None:
    """Until the server answers BUSY: the blocking script has started. (A fixed 0.3 s sleep
    assumed the script thread had connected and sent it by then, which a loaded machine does
    not promise.)"""
    deadline = time.monotonic() + 30
    while True:
        try:
            admin.ping()
        except redis.ResponseError as e:
            if "BUSY" in str(e):
                return
            raise
        if time.monotonic() > deadline:
            raise AssertionError("the blocking script never made the server busy")
        time.sleep(0.01)


def _run_forever(connection_kwargs: dict[str, object]) -> None:
    """A Lua script that loops until SCRIPT KILL ends it."""
    client = redis.Redis(**connection_kwargs)  # type: ignore[arg-type]
    with contextlib.suppress(redis.ResponseError):
        client.eval("while true do end", 0)
    client.close()


@pytest.mark.parametrize("loading_seconds", [1.5])
def test_a_server_still_loading_its_files_is_waited_for_longer(
    tmp_path: Path, loading_seconds: float
) -> None:
    # given a server that answers LOADING for longer than the start timeout (a large store
    # reading its files: 1M customers took over a minute), then PONG (a stand-in speaking the
    # protocol, whose loading time is known: a real store's depends on the machine)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        opened = time.monotonic()

        def serve() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                with connection:
                    while request := connection.recv(4096).upper():
                        if time.monotonic() - opened < loading_seconds:
                            answer = b"-LOADING Redis is loading the dataset in memory\r\n"
                        elif b"HELLO" in request:
                            answer = b"%1\r\n+proto\r\n:3\r\n"
                        else:
                            answer = b"+PONG\r\n" if b"PING" in request else b"+OK\r\n"
                        connection.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        record = ServerRecord(os.getpid(), None, port, os.getpid(), time.time())
        server = EmbeddedServer(tmp_path, start_timeout=0.5, load_timeout=30)
        # when it is waited for, then it is ready once loaded
        server._wait_ready(record)
        assert time.monotonic() - opened >= loading_seconds
        # and with a shorter load timeout it is an error saying how long it waited and why
        opened = time.monotonic()
        impatient = EmbeddedServer(tmp_path, start_timeout=0.2, load_timeout=0.5)
        with pytest.raises(StoreUnavailable, match=r"did not answer within \ds \(.*loading"):
            impatient._wait_ready(record)


async def test_plans_of_more_statements_than_falkordbs_default_stay_cached(
    embedded_server: FalkorStore,
) -> None:
    # given a graph, and more distinct statements than FalkorDB caches plans of by default (25)
    connection = embedded_server._db.connection
    graph = f"test-plans-{os.getpid()}"
    await connection.execute_command("GRAPH.QUERY", graph, "CREATE (:Probe {n: 1})")
    statements = [f"MATCH (p:Probe) WHERE p.n < {i} RETURN count(p) AS found" for i in range(100)]

    async def cached(statement: str) -> bool:
        reply = await connection.execute_command("GRAPH.RO_QUERY", graph, statement)
        stats = [line.decode() if isinstance(line, bytes) else line for line in reply[-1]]
        return "Cached execution: 1" in stats

    try:
        # when each runs once, then all of them again
        first = [await cached(s) for s in statements]
        second = [await cached(s) for s in statements]
        # then the second round runs every one of them from its cached plan
        assert not any(first)
        replanned = [s for s, hit in zip(statements, second, strict=True) if not hit]
        assert not replanned, f"planned again: {replanned[:3]}"
    finally:
        await connection.execute_command("GRAPH.DELETE", graph)
