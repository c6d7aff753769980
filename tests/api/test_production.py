"""Production mode: unexpected errors masked and logged with the request id, GraphiQL off."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import open_store


async def test_unexpected_errors_are_masked_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = StoreSettings(kind="embedded", data_dir=tmp_path / "data")
    store = await open_store(settings)
    try:
        _, key = await create_key(store, Role.ADMIN, "prod")
        app = create_app(settings, store=store, production=True, rate_limiter=None)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"Authorization": f"Bearer {key}", "X-Request-ID": "req-42"}
            page = await client.get("/graphql", headers={"Accept": "text/html"})
            assert "graphiql" not in page.text.lower()  # no IDE in production
            # given a store that dies after authenticating the request
            real_read = store.read

            async def failing_read(query: str, params: object = None) -> object:
                if "ApiKey" in query:
                    return await real_read(query, params)  # type: ignore[arg-type]
                raise RuntimeError("MATCH (secret:Cypher) boom")

            store.read = failing_read  # type: ignore[method-assign]
            with caplog.at_level(logging.ERROR):
                response = await client.post(
                    "/graphql", json={"query": '{ customer(id: "x") { id } }'}, headers=headers
                )
            store.read = real_read  # type: ignore[method-assign]
        body = response.json()
        assert body["errors"][0]["message"] == "Unexpected error."
        assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
        assert body["errors"][0]["path"] == ["customer"]
        assert "secret" not in response.text and "Traceback" not in response.text
        assert any("req-42" in r.getMessage() and "boom" in r.getMessage() for r in caplog.records)
    finally:
        await store.close()


@pytest.mark.parametrize("value", ["99999-01-01", "2025-13-45T99:00:00Z", "2025-01-01Tx"])
async def test_a_bad_datetime_is_named_without_pythons_parser_text(admin: Any, value: str) -> None:
    # given a DateTime the scalar cannot read, as a literal and as a variable
    literal = await admin.errors(f'{{ revenue(by: MONTH, from: "{value}") {{ key }} }}')
    variable = await admin.post(
        "query($t: DateTime) { revenue(by: MONTH, from: $t) { key } }", {"t": value}
    )
    # then the answer names the value and what is expected, and no library text
    for error in (literal[0], variable.json()["errors"][0]):
        assert f'"{value}": expected an ISO 8601 date and time' in error["message"]
        assert "int()" not in error["message"] and "must be in" not in error["message"]
        assert "too short" not in error["message"]
