"""schema.graphql is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from api.schema import sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_graphql_equals_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sdl(), (
        "schema.graphql is out of date: run `crm-graph schema -o schema.graphql`"
    )
