"""schema.graphql is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from api.schema import sdl

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_graphql_equals_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == sdl(), (
        "schema.graphql is out of date: run `crm-graph schema -o schema.graphql`"
    )


async def test_a_repeated_document_is_parsed_and_validated_once() -> None:
    import strawberry.extensions.validation_cache as validation_cache

    from api.schema import build_schema

    schema = build_schema()
    document = "query Repeated { __typename searchCustomers(text: \"xx\", first: 0) { id } }"
    cache = validation_cache._get_validate_cache(512)
    before = cache.cache_info()
    for _ in range(3):
        await schema.execute(document)
    after = cache.cache_info()
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 2
