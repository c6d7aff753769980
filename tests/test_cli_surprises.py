"""A command line that never surprises (issue 16): it names the store it uses, refuses to create
an empty one where another was likely meant, refuses `server stop` while a server is in use,
lists the files `load` ignores, fails a taken port before "serving", keeps the demo key, and says
what went wrong in one line with a documented exit code. Real processes, real data directories.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx

from crm_graph.api.cli import EXIT_PORT, EXIT_REFUSED, EXIT_USAGE
from tests.helpers import write_csv

KEY = re.compile(r"crm_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}")
REPO = Path(__file__).resolve().parents[1]


def crm_graph(
    *args: str, data_dir: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=300, check=check,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def a_store(tmp_path: Path) -> Path:
    """A data directory holding one loaded customer."""
    data_dir = tmp_path / "data"
    write_csv(tmp_path / "in" / "customers.csv", [{"customer_id": "c1", "name": "Ada"}])
    crm_graph("load", str(tmp_path / "in"), "--no-progress", data_dir=data_dir)
    return data_dir


@contextlib.contextmanager
def serving(data_dir: Path, *extra: str) -> Iterator[tuple[list[str], str]]:
    """`crm-graph serve --port 0` until its "serving" line: the lines it printed, and its URL."""
    command = [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), "serve",
               "--port", "0", *extra]  # fmt: skip
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        watchdog = threading.Timer(120, server.kill)  # a hung server fails the test, not CI
        watchdog.start()
        try:
            assert server.stdout is not None
            for line in server.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("crm-graph") and "serving" in line:
                    break
            watchdog.cancel()
            found = re.search(r"on (http://\S+) ", lines[-1])
            assert found, lines
            yield lines, found.group(1)
        finally:
            watchdog.cancel()
            server.terminate()
            server.wait(60)


def test_a_missing_data_directory_is_refused_naming_it(tmp_path: Path) -> None:
    # given a data directory that does not exist (a command run from another folder)
    data_dir = tmp_path / "elsewhere" / "data"
    # when a key is created there
    refused = crm_graph("keys", "create", "--role", "admin", data_dir=data_dir, check=False)
    # then it is refused, naming the directory and how to point at or create a store
    assert refused.returncode == EXIT_REFUSED and refused.stdout == ""
    assert f"no store at {data_dir}" in refused.stderr
    assert "--data-dir" in refused.stderr and "--create" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not data_dir.exists()
    for command in (["query", "RETURN 1"], ["status"], ["keys", "list"], ["server", "stop"]):
        assert crm_graph(*command, data_dir=data_dir, check=False).returncode == EXIT_REFUSED
    assert not data_dir.exists()
    # and told to, it creates the store
    created = crm_graph("--create", "keys", "create", "--role", "admin", data_dir=data_dir)
    assert KEY.fullmatch(created.stdout.splitlines()[-1]) and data_dir.is_dir()


def test_every_store_command_names_its_store(tmp_path: Path) -> None:
    data_dir = a_store(tmp_path)
    for command in (["query", "RETURN 1 AS one", "--json"], ["keys", "list"], ["status"]):
        done = crm_graph(*command, data_dir=data_dir)
        assert done.stderr.startswith(
            f"crm-graph {command[0]}: store: embedded FalkorDB in {data_dir.resolve()}\n"
        ), done.stderr
    assert crm_graph("query", "RETURN 1 AS one", "--json", data_dir=data_dir).stdout.startswith(
        "["
    )  # the JSON on stdout stays clean


def test_server_stop_is_refused_while_serve_runs(tmp_path: Path) -> None:
    data_dir = a_store(tmp_path)
    with serving(data_dir) as (_, url):
        # when the embedded server is stopped under a running `serve`
        stop = crm_graph("server", "stop", data_dir=data_dir, check=False)
        # then it is refused, naming the process that uses it
        assert stop.returncode == EXIT_REFUSED, stop.stderr
        assert re.search(r"in use by process \d+ \(crm-graph .*serve", stop.stderr), stop.stderr
        assert "--force" in stop.stderr and "Traceback" not in stop.stderr
        # and the API still answers
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200
    # once serve is gone, the server is not running any more: nothing to stop
    assert crm_graph("server", "stop", data_dir=data_dir).stdout.startswith("no embedded server")


def test_a_taken_port_fails_before_serving_with_its_own_exit_code(tmp_path: Path) -> None:
    data_dir = a_store(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = crm_graph("serve", "--port", str(port), data_dir=data_dir, check=False)
    assert done.returncode == EXIT_PORT
    assert "serving" not in done.stdout
    assert done.stderr == (
        f"crm-graph serve: cannot listen on 127.0.0.1:{port}: it is in use by another program "
        "(another `crm-graph serve`?); choose another port with --port or CRM_GRAPH_PORT "
        "(make run PORT=8001)\n"
    )


def test_the_port_is_taken_from_crm_graph_port(tmp_path: Path) -> None:
    data_dir = a_store(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = crm_graph("serve", data_dir=data_dir, check=False, env={"CRM_GRAPH_PORT": str(port)})
    assert done.returncode == EXIT_PORT and f"127.0.0.1:{port}" in done.stderr


def test_make_run_takes_port_the_documented_way() -> None:
    dry = subprocess.run(["make", "-n", "run", "PORT=8001"], cwd=REPO, capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert re.search(r"crm-graph serve --demo --port 8001\b", dry.stdout), dry.stdout
    plain = subprocess.run(["make", "-n", "run"], cwd=REPO, capture_output=True, text=True,
                           check=True, env={**os.environ, "CRM_GRAPH_PORT": "8002"})  # fmt: skip
    assert "crm-graph serve --demo" in plain.stdout and "--port" not in plain.stdout


def test_serve_demo_keeps_its_key_for_the_next_run(tmp_path: Path) -> None:
    data_dir = a_store(tmp_path)
    with serving(data_dir, "--demo") as (first, _):
        pass
    with serving(data_dir, "--demo") as (second, url):
        [key] = [line for line in second if KEY.fullmatch(line)]
        assert [line for line in first if KEY.fullmatch(line)] == [key]
        assert "since an earlier run" in second[-3]
        answer = httpx.post(f"{url}/graphql", json={"query": "{ __typename }"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
        assert answer.json()["data"] == {"data": {"__typename": "Query"}}["data"]
    kept = data_dir / "demo-key"
    assert kept.read_text().strip() == key and stat.S_IMODE(kept.stat().st_mode) == 0o600
    # a revoked demo key is replaced by a new one
    listed = crm_graph("keys", "list", "--json", data_dir=data_dir).stdout
    key_id = re.search(r'"id": "(\w+)"', listed)
    assert key_id
    crm_graph("keys", "revoke", key_id.group(1), data_dir=data_dir)
    with serving(data_dir, "--demo") as (third, _):
        [new_key] = [line for line in third if KEY.fullmatch(line)]
    assert new_key != key and kept.read_text().strip() == new_key


def test_generate_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    out = tmp_path / "biz"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = crm_graph("generate", str(out), "--customers", "20", data_dir=tmp_path / "d",
                        check=False)  # fmt: skip
    assert refused.returncode == EXIT_REFUSED
    assert "is not empty (notes.txt)" in refused.stderr and "--force" in refused.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    crm_graph("generate", str(out), "--customers", "20", "--force", data_dir=tmp_path / "d")
    assert (out / "customers.csv").is_file() and (out / "notes.txt").read_text() == "mine"


def test_load_lists_the_files_it_ignores_with_a_did_you_mean(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_csv(folder / "customers.csv", [{"customer_id": "c1"}])
    write_csv(folder / "transaction.csv", [{"transaction_id": "t1"}])
    write_csv(folder / "Interactions.csv", [{"interaction_id": "i1"}])
    (folder / "products.xlsx").write_bytes(b"PK\x03\x04")
    (folder / "README.txt").write_text("exported on Monday")
    (folder / ".DS_Store").write_bytes(b"\0")
    done = crm_graph("load", str(folder), "--no-progress", data_dir=tmp_path / "data")
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "ignored Interactions.csv: did you mean interactions.csv? (file names are lower case)",
        "ignored README.txt: not a contract file "
        "(customers, products, transactions, interactions, social_ties)",
        "ignored products.xlsx: did you mean products.csv? (.xlsx: load reads .csv, .jsonl "
        "and .ndjson)",
        "ignored transaction.csv: did you mean transactions.csv?",
    ]
    assert ".DS_Store" not in done.stdout


def test_schema_to_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "dir" / "schema.graphql"
    done = crm_graph("schema", "-o", str(target), data_dir=tmp_path / "d", check=False)
    assert done.returncode == EXIT_USAGE
    assert done.stderr == f"crm-graph schema: cannot use {target}: No such file or directory\n"


def test_library_messages_are_said_in_our_words(tmp_path: Path) -> None:
    data_dir = a_store(tmp_path)
    # a parameter the query uses but was not given is named (FalkorDB: "Missing parameters")
    missing = crm_graph("query", "MATCH (c:Customer {id: $id}) WHERE c.name = $name RETURN c",
                        "-p", "name=Ada", data_dir=data_dir, check=False)  # fmt: skip
    assert missing.returncode == EXIT_USAGE
    assert missing.stderr.splitlines()[-1] == (
        "crm-graph query: the query uses $id but no value was given: add --param id=VALUE"
    )
    # a $ in a string is no parameter
    quoted = crm_graph("query", "RETURN '$id' AS text", "--json", data_dir=data_dir)
    assert '"$id"' in quoted.stdout
    # a write in a read-only query: ours, not "graph.RO_QUERY is to be executed only on ..."
    write = crm_graph("query", "CREATE (:Customer {id: 'x'})", data_dir=data_dir, check=False)
    assert "tries to write" in write.stderr and "RO_QUERY" not in write.stderr
    # a phone number that is not one: why, not "(1) The string supplied did not seem to be..."
    folder = tmp_path / "phones"
    write_csv(folder / "customers.csv", [{"customer_id": "p1", "phone": "+44 call me"}])
    crm_graph("load", str(folder), "--no-progress", data_dir=data_dir)
    rejects = (tmp_path / "phones.rejects.csv").read_text()
    assert "'+44 call me' is not a phone number: it has too few digits, or letters" in rejects
    assert "did not seem" not in rejects
