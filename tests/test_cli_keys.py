"""`crm-graph keys` and `serve --demo`'s key, as a user runs them: a real process, a real data
directory, the keys then checked against the store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from crm_graph.api.auth.keys import authenticate
from crm_graph.api.auth.principal import AuthError, Principal, Role
from crm_graph.api.cli import build_parser
from crm_graph.graph.settings import parse_store
from crm_graph.graph.store import open_store
from tests.helpers import write_csv

KEY = re.compile(r"crm_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}")


def crm_graph(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # --create: these tests start from no store (a missing one is refused without it)
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), "--create", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


async def principal_of(key: str, data_dir: Path) -> Principal:
    store = await open_store(parse_store("embedded", data_dir=data_dir, env={}))
    try:
        return await authenticate(store, f"Bearer {key}")
    finally:
        await store.close()


@pytest.mark.parametrize(
    "command", [["keys"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"]]
)
def test_every_keys_command_has_help(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: crm-graph keys" in capsys.readouterr().out


async def test_create_prints_the_key_last_and_it_authenticates(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # when a key is created
    created = crm_graph(
        "keys", "create", "--role", "analyst", "--name", "BI team", data_dir=data_dir
    )
    # then its id, name and role are printed, and the key itself is the last line
    lines = created.stdout.splitlines()
    key_id = lines[0].split()[-1]
    assert lines[:3] == [f"id       {key_id}", "name     BI team", "role     analyst"]
    assert KEY.fullmatch(lines[-1]) and lines[-1].startswith(f"crm_{key_id}_")
    assert sum(KEY.search(line) is not None for line in lines) == 1
    # and the key authenticates against the store with its role
    principal = await principal_of(lines[-1], data_dir)
    assert principal == Principal(key_id=key_id, name="BI team", role=Role.ANALYST)


def test_a_key_is_named_after_its_role_by_default(tmp_path: Path) -> None:
    created = crm_graph("keys", "create", "--role", "partner", data_dir=tmp_path / "data")
    assert "name     partner" in created.stdout.splitlines()


def test_list_shows_the_keys_but_never_their_secrets(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # given two keys
    first = crm_graph("keys", "create", "--role", "admin", "--name", "ops", data_dir=data_dir)
    second = crm_graph("keys", "create", "--role", "partner", "--name", "acme", data_dir=data_dir)
    keys = [out.stdout.splitlines()[-1] for out in (first, second)]
    # when they are listed, as a table and as JSON
    table = crm_graph("keys", "list", data_dir=data_dir).stdout
    listed = json.loads(crm_graph("keys", "list", "--json", data_dir=data_dir).stdout)
    # then both are there, and no secret, no digest is
    assert [(k["name"], k["role"], k["revoked_at"]) for k in listed] == [
        ("ops", "admin", None),
        ("acme", "partner", None),
    ]
    assert set(listed[0]) == {"id", "name", "role", "created_at", "revoked_at", "last_used_at",
                              "scopes", "customers", "expires"}  # fmt: skip
    header = table.splitlines()[0].split()
    assert header[:5] == ["id", "name", "role", "created", "revoked"]
    assert all(k["id"] in table for k in listed) and "(2 keys, 2 active)" in table
    for key in keys:
        secret = key.split("_", 2)[2]
        assert secret not in table and secret not in json.dumps(listed)
    assert "sha256" not in table + json.dumps(listed)


async def test_a_revoked_key_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # given a key
    created = crm_graph("keys", "create", "--role", "admin", data_dir=data_dir).stdout
    key_id, key = created.splitlines()[0].split()[-1], created.splitlines()[-1]
    # when it is revoked
    revoked = crm_graph("keys", "revoke", key_id, data_dir=data_dir)
    # then it says so, lists as revoked, and no longer authenticates
    assert f"revoked API key {key_id}" in revoked.stdout
    [listed] = json.loads(crm_graph("keys", "list", "--json", data_dir=data_dir).stdout)
    assert listed["revoked_at"] is not None
    assert "(1 key, 0 active)" in crm_graph("keys", "list", data_dir=data_dir).stdout
    with pytest.raises(AuthError, match="revoked"):
        await principal_of(key, data_dir)


def test_errors_are_clear_with_exit_codes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    unknown = crm_graph("keys", "revoke", "nosuchkey123", data_dir=data_dir, check=False)
    assert unknown.returncode == 1
    assert "no API key has the id 'nosuchkey123'" in unknown.stderr

    bad_role = crm_graph("keys", "create", "--role", "root", data_dir=data_dir, check=False)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr

    blank = crm_graph("keys", "create", "--role", "admin", "--name", " ", data_dir=data_dir,
                      check=False)  # fmt: skip
    assert blank.returncode == 2 and "needs a name" in blank.stderr

    for failed in (unknown, bad_role, blank):
        assert "Traceback" not in failed.stderr and failed.stdout == ""


async def test_serve_demo_prints_a_working_admin_key(tmp_path: Path) -> None:
    # given a store that already holds a customer (so the demo loads nothing)
    data_dir = tmp_path / "data"
    write_csv(tmp_path / "in" / "customers.csv", [{"customer_id": "c1"}])
    crm_graph("load", str(tmp_path / "in"), "--no-progress", data_dir=data_dir)
    # when the demo server starts
    command = [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), "serve",
               "--demo",
               "--port", "0"]  # fmt: skip
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
        finally:
            watchdog.cancel()
            server.terminate()
    # then it printed a new admin key before serving, and the key works
    keys = [line for line in lines if KEY.fullmatch(line)]
    assert len(keys) == 1, lines
    assert lines.index(keys[0]) == len(lines) - 2  # right before the "serving" line
    principal = await principal_of(keys[0], data_dir)
    assert (principal.role, principal.name) == (Role.ADMIN, "demo")
