"""A real `crm-graph serve` in a subprocess, on a 127.0.0.1 port it chose, on its own embedded
store: for the tests of what only a running server shows (its access log, a browser calling it)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from crm_graph.graph.settings import parse_store
from crm_graph.graph.store import open_store
from tests.helpers import stop_embedded_server


def crm_graph(*args: str, data_dir: Path, env: Mapping[str, str] | None = None) -> str:
    """Run a crm-graph command on `data_dir`; its standard output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Served:
    url: str
    """http://127.0.0.1:PORT"""
    data_dir: Path
    log: Path
    """The server's standard error (where the access log goes)."""
    process: subprocess.Popen[bytes]

    def create_key(self, role: str = "admin") -> str:
        return crm_graph("keys", "create", "--role", role, data_dir=self.data_dir).split()[-1]

    def stop(self) -> None:
        """Stop the server as an operator would (Ctrl-C), and wait for it to finish."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@contextlib.contextmanager
def serving(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    customers: int = 0,
) -> Iterator[Served]:
    """`crm-graph serve` on a fresh data directory under `tmp_path` (with a generated business
    of `customers` loaded first when asked), stopped, with its embedded store, afterwards."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    data_dir = tmp_path / "data"
    if customers:
        crm_graph(
            "generate", str(tmp_path / "business"), "--customers", str(customers),
            "--seed", "1", data_dir=data_dir,
        )  # fmt: skip
        crm_graph("load", str(tmp_path / "business"), data_dir=data_dir)
    log, said = tmp_path / "serve.log", tmp_path / "serve.out"
    # --port 0: the server takes a free port and names it in its "serving" line (a port found
    # free here could be taken before the server binds it, on a machine shared with other suites)
    with open(log, "wb") as err, open(said, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), "--create",
             "serve", "--host", "127.0.0.1", "--port", "0"],
            stdout=out,
            stderr=err,
            env={**os.environ, **(env or {})},
        )  # fmt: skip
    served = Served("", data_dir, log, process)
    try:
        served.url = _address(served, said)
        _wait_until_ready(served)
        yield served
    finally:
        served.stop()
        stop_embedded_server(data_dir)


SERVING = re.compile(r"serving .* on (http://\S+) \(GraphQL")


def _address(served: Served, said: Path, timeout: float = 120) -> str:
    """The base URL from the server's "serving" line on its standard output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = SERVING.search(said.read_text(errors="replace"))
        if found:
            return found.group(1)
        if served.process.poll() is not None:
            raise AssertionError(f"crm-graph serve exited: {served.log.read_text()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError(
        f"crm-graph serve named no address in {timeout}s: {served.log.read_text()}"
    )


def _wait_until_ready(served: Served, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"crm-graph serve exited: {served.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"crm-graph serve not ready in {timeout}s: {served.log.read_text()}")


async def serve_store(engine: str) -> str | None:
    """The `--store` of a serve test on `engine`: None for the embedded store; for "neo4j" the
    suite's Neo4j (the test skipped without one), emptied first."""
    if engine != "neo4j":
        return None
    from tests.conftest import NEO4J_URI, NO_NEO4J

    if not NEO4J_URI:
        pytest.skip(NO_NEO4J)
    emptied = await open_store(parse_store(NEO4J_URI), bootstrap=False)
    await emptied.delete_graph()  # type: ignore[attr-defined]
    await emptied.close()
    return NEO4J_URI
