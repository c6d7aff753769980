"""The command line, as a user runs it: a real process, a real data directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from crm_graph.api.cli import build_parser, main
from tests.helpers import read_rejects as read_rows
from tests.helpers import write_csv


def crm_graph(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=check,
    )


@pytest.mark.parametrize(
    "command",
    [[], ["generate"], ["load"], ["query"], ["serve"], ["status"], ["server"], ["server", "stop"]],
)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: crm-graph" in capsys.readouterr().out


def test_generate_load_query_status(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = crm_graph(
        "generate", str(tmp_path / "biz"), "--customers", "300", "--seed", "3", data_dir=data_dir
    )
    assert "customers.csv" in out.stdout

    loaded = crm_graph("load", str(tmp_path / "biz"), "--no-progress", data_dir=data_dir)
    assert "customers.csv" in loaded.stdout and "rows/s" in loaded.stdout

    rows = json.loads(
        crm_graph(
            "query", "MATCH (c:Customer) RETURN count(c) AS n", "--json", data_dir=data_dir
        ).stdout
    )
    customers = len(read_rows(tmp_path / "biz" / "customers.csv"))
    merged = len(read_rows(tmp_path / "biz.merges.csv"))
    assert rows == [{"n": customers - merged}]

    table = crm_graph(
        "query",
        "MATCH (c:Customer) WHERE c.id = $id RETURN c.id AS id",
        "--param",
        "id=nobody",
        data_dir=data_dir,
    ).stdout
    assert "(0 rows)" in table

    status = json.loads(crm_graph("status", "--json", data_dir=data_dir).stdout)
    assert status["nodes"]["Customer"] == customers - merged
    assert status["engine"].startswith("FalkorDB 4.")
    assert status["relationships"]["PLACED"] > 0


def test_errors_are_clear_with_exit_codes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()  # a store where a store is expected (a missing one is refused, exit 4)
    write = crm_graph("query", "CREATE (:Customer {id: 'x'})", data_dir=data_dir, check=False)
    assert write.returncode == 1 and "tries to write" in write.stderr
    assert "Traceback" not in write.stderr

    syntax = crm_graph("query", "MATCH (c RETURN c", data_dir=data_dir, check=False)
    assert syntax.returncode == 1 and "refused the query" in syntax.stderr

    missing = crm_graph("load", str(tmp_path / "nowhere"), data_dir=data_dir, check=False)
    assert missing.returncode == 2 and "is not a folder" in missing.stderr

    bad_param = crm_graph("query", "RETURN 1", "--param", "oops", data_dir=data_dir, check=False)
    assert bad_param.returncode == 2 and "NAME=VALUE" in bad_param.stderr


def test_strict_load_exits_3_when_rows_are_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_csv(folder / "customers.csv", [{"customer_id": "a"}, {"customer_id": ""}])
    code = main(
        ["--data-dir", str(tmp_path / "data"), "load", str(folder), "--no-progress", "--strict"]
    )
    assert code == 3
    assert "is required and empty" in (tmp_path / "in.rejects.csv").read_text()


def test_bad_store_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", "mysql://db", "status"]) == 2
    assert "CRM_GRAPH_STORE must be" in capsys.readouterr().err


def test_train_with_a_worker_process_reports_held_out_metrics(tmp_path: Path) -> None:
    # given a generated business loaded into a data directory
    data_dir = tmp_path / "data"
    crm_graph("generate", str(tmp_path / "biz"), "--customers", "500", "--seed", "4",
              data_dir=data_dir)  # fmt: skip
    crm_graph("load", str(tmp_path / "biz"), "--no-progress", data_dir=data_dir)
    # when trained with two processes, the report written to a file
    report = tmp_path / "report.json"
    out = crm_graph("train", "--processes", "2", "--report", str(report), data_dir=data_dir)
    # then the report holds the held-out metrics, the worker's stages and the total time
    written = json.loads(report.read_text())
    assert 0.5 <= written["churn"]["auc"] <= 1 and written["rules"]["count"] >= 0
    assert {"starting the worker", "waiting for the worker"} <= set(written["seconds"])
    assert written["total_seconds"] > written["seconds"]["read"] + written["seconds"]["write"]
    printed = re.search(r"model version \S+; ([0-9.]+)s", out.stdout)
    assert printed and abs(float(printed.group(1)) - written["total_seconds"]) <= 0.06
    # and a process count other than 1 or 2 is refused by name
    refused = crm_graph("train", "--processes", "3", data_dir=data_dir, check=False)
    assert refused.returncode == 2 and "--processes" in refused.stderr


@pytest.mark.parametrize(
    "setting",
    ["CRM_GRAPH_MAX_COST=lots", "CRM_GRAPH_STATEMENT_TIMEOUT=soon", "CRM_GRAPH_INTROSPECTION=maybe",
     "CRM_GRAPH_RATE_POINTS=-3", "CRM_GRAPH_AUTH_FAILURES=x"],
)  # fmt: skip
def test_a_malformed_limit_setting_stops_serve_naming_it(tmp_path: Path, setting: str) -> None:
    import os

    name = setting.split("=")[0]
    done = subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(tmp_path), "serve",
         "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, name: setting.split("=")[1]},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert name in done.stderr and "Traceback" not in done.stderr


def test_audit_prune_keeps_entries_for_the_days_setting(tmp_path: Path) -> None:
    # CRM_GRAPH_AUDIT_DAYS is a setting like the others: read once, a malformed value refused in
    # one line naming it (it was read at import time, a bare float() with a traceback)
    def audit_prune(days: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(tmp_path / "data"),
             "--create", "audit", "--prune"],
            capture_output=True, text=True, timeout=300, check=False,
            env={**os.environ, "CRM_GRAPH_AUDIT_DAYS": days},
        )  # fmt: skip

    kept = audit_prune("0.5")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout == "deleted 0 audit entries older than 0.5 days\n"
    refused = audit_prune("a year")
    assert refused.returncode == 2
    assert refused.stderr == (
        "crm-graph audit: CRM_GRAPH_AUDIT_DAYS must be a number ≥ 0, got 'a year'\n"
    )
