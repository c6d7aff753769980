"""`crm-graph query`: --csv, and instants (stored as epoch milliseconds) shown as ISO 8601 UTC in
tables and CSV. A real process on a real data directory."""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_csv


def crm_graph(*args: str, data_dir: Path) -> str:
    return subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(data_dir), *args],
        capture_output=True, timeout=300, check=True,
    ).stdout.decode("utf-8")  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    write_csv(folder / "customers.csv", [
        {"customer_id": "c1", "name": "=HYPERLINK(\"x\")", "signup_date": "2024-01-31"},
        {"customer_id": "c2", "name": "Bo, \"the\" Builder", "signup_date": ""},
    ])  # fmt: skip
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t1", "customer_id": "c1", "timestamp": "2024-05-01T09:30:00Z",
         "amount": "12.5"},
        {"transaction_id": "t2", "customer_id": "c2", "timestamp": "2024-05-02T10:00:00.250Z",
         "amount": "-3"},
    ])  # fmt: skip
    data_dir = folder.parent / "data"
    crm_graph("load", str(folder), "--no-progress", data_dir=data_dir)
    return data_dir


ORDERS = (
    "MATCH (c:Customer)-[:PLACED]->(t:Transaction) "
    "RETURN c.id AS id, c.name AS name, c.signupAt AS signupAt, t.at, t.total AS total, "
    "[t.at] AS placedAt, {at: t.at, n: 1} AS info ORDER BY id"
)


def test_csv_has_a_header_quoted_values_and_iso_instants(data_dir: Path) -> None:
    out = crm_graph("query", ORDERS, "--csv", data_dir=data_dir)
    assert out.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows == [
        ["id", "name", "signupAt", "t.at", "total", "placedAt", "info"],
        ["c1", "'=HYPERLINK(\"x\")", "2024-01-31T00:00:00Z", "2024-05-01T09:30:00Z", "12.5",
         '["2024-05-01T09:30:00Z"]', '{"at": "2024-05-01T09:30:00Z", "n": 1}'],
        ["c2", 'Bo, "the" Builder', "", "2024-05-02T10:00:00.250Z", "-3.0",
         '["2024-05-02T10:00:00.250Z"]', '{"at": "2024-05-02T10:00:00.250Z", "n": 1}'],
    ]  # fmt: skip


def test_json_keeps_the_stored_epoch_milliseconds(data_dir: Path) -> None:
    rows = json.loads(crm_graph("query", ORDERS, "--json", data_dir=data_dir))
    assert [row["t.at"] for row in rows] == [1714555800000, 1714644000250]
    assert rows[0]["signupAt"] == 1706659200000


def test_the_table_shows_iso_instants_unless_epoch_ms(data_dir: Path) -> None:
    table = crm_graph("query", ORDERS, data_dir=data_dir)
    assert "2024-05-01T09:30:00Z" in table and "1714555800000" not in table
    raw = crm_graph("query", ORDERS, "--epoch-ms", data_dir=data_dir)
    assert "1,714,555,800,000" in raw and "2024-05-01T09:30:00Z" not in raw


def test_a_number_in_a_column_not_named_as_an_instant_stays_a_number(data_dir: Path) -> None:
    out = crm_graph(
        "query", "RETURN 1714555800000 AS total, 5 AS attempts, 7 AS format", "--csv",
        data_dir=data_dir,
    )  # fmt: skip
    assert out == "total,attempts,format\r\n1714555800000,5,7\r\n"


def test_the_readme_query_examples_find_what_they_show(tmp_path: Path) -> None:
    # given the demo business, loaded as `serve --demo` loads it
    from crm_graph.api.cli import DEMO_CUSTOMERS, DEMO_SEED

    data_dir = tmp_path / "data"
    demo = tmp_path / "demo"
    crm_graph("generate", str(demo), "--customers", str(DEMO_CUSTOMERS), "--seed",
              str(DEMO_SEED), data_dir=data_dir)  # fmt: skip
    crm_graph("load", str(demo), "--no-progress", data_dir=data_dir)
    # when each `crm-graph query` line of the README's command-line section runs as written
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    lines = [line.strip() for line in readme.splitlines()
             if line.startswith("    crm-graph query ")]  # fmt: skip
    assert len(lines) == 3
    for line in lines:
        words = shlex.split(line.split(" > ")[0].replace("\\$", "$"))
        out = crm_graph(*words[1:], data_dir=data_dir)
        # then each finds rows (the id example once had 7 digits where demo ids have 8)
        if "--json" in words:
            assert json.loads(out), line
        elif "--csv" in words:
            assert len(out.splitlines()) > 1, line
        else:
            assert "(5 rows)" in out, line


def test_csv_of_no_rows_is_empty(data_dir: Path) -> None:
    out = crm_graph("query", "MATCH (c:Customer {id: 'nobody'}) RETURN c.id AS id", "--csv",
                    data_dir=data_dir)  # fmt: skip
    assert out == ""
