"""Health endpoints through the real ASGI app on a real store."""

from __future__ import annotations

import httpx

from crm_graph.api.app import create_app
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore


async def test_healthz_and_readyz(store: GraphStore, embedded_settings: StoreSettings) -> None:
    app = create_app(embedded_settings, store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        app.state.store = store  # ASGITransport runs no lifespan: hand the app its store
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_readyz_says_unavailable_when_the_store_is_gone(
    embedded_settings: StoreSettings, tmp_path: object
) -> None:
    from pathlib import Path

    from crm_graph.graph.store import open_store

    settings = StoreSettings(kind="embedded", data_dir=Path(str(tmp_path)) / "gone")
    store = await open_store(settings)
    await store.close()  # the server stops: it was the only user
    app = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        app.state.store = store  # ASGITransport runs no lifespan: hand the app its store
        ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
