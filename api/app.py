"""The Starlette application: the store opened and closed in the lifespan, health endpoints.

The GraphQL schema mounts here (issue: the GraphQL API); until it does, the server answers
health checks only.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from graph import __version__
from graph.errors import StoreError
from graph.settings import StoreSettings
from graph.store import GraphStore, open_store

log = logging.getLogger(__name__)


def create_app(settings: StoreSettings, *, store: GraphStore | None = None) -> Starlette:
    """The ASGI app. A given `store` is used as is (and not closed); otherwise the app opens the
    store the settings name at startup and closes it at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if store is not None:
            app.state.store = store
            yield
            return
        opened = await open_store(settings)
        app.state.store = opened
        log.info("serving %s", opened.description)
        try:
            yield
        finally:
            await opened.close()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(request: Request) -> JSONResponse:
        current: GraphStore = request.app.state.store
        try:
            await current.ping()
        except StoreError as e:
            log.warning("not ready: %s", e)
            return JSONResponse({"status": "unavailable", "store": current.description}, 503)
        return JSONResponse({"status": "ready", "store": current.description})

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz)],
        lifespan=lifespan,
    )
