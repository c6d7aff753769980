"""`crm-graph serve` as a subprocess for the benchmarks, an admin key for it, and what /proc
says about a process (resident memory, CPU time)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from crm_graph.graph.embedded import EmbeddedServer

REPO = Path(__file__).resolve().parents[1]
CpuProbe = Callable[[], dict[str, float]]
"""Cumulative CPU seconds of each process of interest, by name."""


def _cli(data_dir: Path, *args: str, store: str | None = None) -> list[str]:
    """`crm-graph` on the embedded store in `data_dir`, or on `store` (a CRM_GRAPH_STORE value)
    when one is given and is not `embedded`."""
    chosen = [] if store in (None, "embedded") else ["--store", str(store)]
    return [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *chosen, *args]


def create_admin_key(
    data_dir: Path, name: str = "bench api", *, store: str | None = None
) -> tuple[str, str]:
    """A new admin key from `crm-graph keys create`: its id, and the key (the last line)."""
    done = subprocess.run(
        _cli(data_dir, "--create", "keys", "create", "--role", "admin", "--name", name,
             store=store),
        capture_output=True, text=True, timeout=120, cwd=REPO, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"keys create failed ({done.returncode}): {done.stderr.strip()}")
    lines = done.stdout.strip().splitlines()
    key_id = next(line.split()[1] for line in lines if line.startswith("id "))
    return key_id, lines[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVING = re.compile(rb"serving .* on (http://\S+) \(GraphQL")
"""`crm-graph serve`'s "serving" line, which names the port it listens on."""


@dataclass
class ApiServer:
    process: subprocess.Popen[bytes]
    address: str
    """The base URL; empty until the server has said where it listens (`--port 0`)."""
    log_path: Path

    @property
    def url(self) -> str:
        """The base URL, read from the server's "serving" line when it chose its own port."""
        if not self.address:
            found = SERVING.search(self.log_path.read_bytes()) if self.log_path.exists() else None
            if found is None:
                raise RuntimeError("the API server has not said where it listens yet")
            self.address = found.group(1).decode()
        return self.address

    def listening(self) -> bool:
        """Whether the server has said where it listens (at once for a given port)."""
        try:
            return bool(self.url)
        except RuntimeError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def api_server(
    data_dir: Path,
    log_path: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    *,
    store: str | None = None,
) -> Iterator[ApiServer]:
    """`crm-graph serve` on 127.0.0.1 as a subprocess (rate limits off unless `env` sets them:
    it is added to the environment), stopped on exit
    whatever happens: SIGINT (uvicorn's graceful shutdown, which lets go of the store), then
    SIGTERM, then SIGKILL. Its own session, so a Ctrl-C at the terminal reaches only the bench,
    which then stops the server itself."""
    # Without a port the server takes any free one and says which: a port found free here
    # and passed to it could be taken in between (by another suite's server on a shared
    # machine, which would then answer this one's requests)
    env = {**os.environ, "CRM_GRAPH_RATE_LIMIT": "0", "CRM_GRAPH_RATE_POINTS": "0", **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            # --create: a bench may serve a store it has not loaded yet (bench explore's is empty)
            _cli(data_dir, "--create", "serve", "--port", str(port or 0), "--host", "127.0.0.1",
                 store=store),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield ApiServer(process, f"http://127.0.0.1:{port}" if port else "", log_path)
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGINT, then SIGTERM after `grace` seconds, then SIGKILL after 10 more; reaped."""
    steps: list[tuple[Callable[[], None], float]] = [
        (lambda: process.send_signal(signal.SIGINT), grace),
        (process.terminate, 10.0),
        (process.kill, 10.0),
    ]
    for stop, wait in steps:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            stop()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)


async def wait_ready(server: ApiServer, timeout: float = 120.0) -> None:
    """Wait until /readyz answers 200; fail at once if the server process exits."""
    deadline = time.monotonic() + timeout
    while not server.listening():
        if server.process.poll() is not None or time.monotonic() >= deadline:
            raise RuntimeError(
                f"the API server did not say where it listens (status "
                f"{server.process.poll()}):\n{server.log_tail()}"
            )
        await asyncio.sleep(0.1)
    async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=5) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"the API server exited with status {server.process.returncode}:\n"
                    f"{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the API server was not ready within {timeout:.0f}s:\n{server.log_tail()}")


def rss_mb(pid: int | None) -> float | None:
    """VmRSS of a process in MB (None when it cannot be read)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds a process has used so far (None when it cannot be read)."""
    if pid is None:
        return None
    if pid == os.getpid():
        times = os.times()
        return times.user + times.system
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def cpu_probe(pids: dict[str, int | None]) -> CpuProbe:
    def probe() -> dict[str, float]:
        found = {name: cpu_seconds(pid) for name, pid in pids.items()}
        return {name: value for name, value in found.items() if value is not None}

    return probe


def falkordb_pid(data_dir: Path) -> int | None:
    record = EmbeddedServer(data_dir).read_record()
    return record.pid if record else None


def listening_pid(port: int) -> int | None:
    """The process of this user listening on TCP `port` of this machine (an external store's
    server, for its CPU time), or None when /proc does not say."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return int(proc.name)
    return None
