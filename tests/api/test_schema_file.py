"""schema.graphql is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from crm_graph.api.schema import sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_graphql_equals_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sdl(), (
        "schema.graphql is out of date: run `crm-graph schema -o schema.graphql`"
    )


async def test_a_repeated_document_is_parsed_and_validated_once() -> None:
    from crm_graph.api.schema import _parsed, _validation_errors, build_schema

    schema = build_schema()
    document = 'query Repeated { __typename searchCustomers(text: "xx", first: 0) { id } }'
    before = _parsed.cache_info(), _validation_errors.cache_info()
    for _ in range(3):
        await schema.execute(document)
    after = _parsed.cache_info(), _validation_errors.cache_info()
    for cache_before, cache_after in zip(before, after, strict=True):
        assert cache_after.misses - cache_before.misses <= 1
        assert cache_after.hits - cache_before.hits >= 2
