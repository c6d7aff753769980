"""API keys and the auth middleware, on a real store, through a tiny inline app."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from crm_graph.api.access_log import AccessLog
from crm_graph.api.auth.keys import authenticate, create_key, list_keys, revoke_key
from crm_graph.api.auth.middleware import AuthMiddleware
from crm_graph.api.auth.principal import AuthError, Principal, Role
from crm_graph.api.auth.ratelimit import RateLimiter
from crm_graph.graph import api_keys
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore, open_store
from tests.helpers import secret_of

# -- a tiny app behind the middleware ------------------------------------------------------------


@dataclass
class Recorder:
    """What the inner app saw: one entry per request that reached it."""

    calls: list[dict[str, Any]] = field(default_factory=list)


def make_app(
    store: GraphStore, recorder: Recorder, rate_limiter: RateLimiter | None = None
) -> Starlette:
    async def graphql(request: Request) -> Response:
        principal: Principal | None = request.state.principal
        recorder.calls.append(
            {
                "path": request.url.path,
                "principal": principal,
                "request_id": request.state.request_id,
            }
        )
        if "text/html" in request.headers.get("accept", "") and not request.url.query:
            return HTMLResponse("<html>GraphiQL</html>")
        return JSONResponse({"data": {"role": principal.role if principal else None}})

    async def healthz(request: Request) -> JSONResponse:
        recorder.calls.append({"path": request.url.path, "principal": request.state.principal})
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
        ],
        middleware=[
            Middleware(AccessLog),
            Middleware(AuthMiddleware, rate_limiter=rate_limiter),
        ],
    )
    app.state.store = store  # ASGITransport runs no lifespan: hand the app its store
    return app


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    """`client_for(app)`: an httpx client on the app, closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def open_client(app: Starlette) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


QUERY = {"query": "{ customers { id } }"}

# -- principals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "can_write", "sees_personal_data", "can_aggregate"),
    [
        (Role.ADMIN, True, True, True),
        (Role.ANALYST, False, True, True),
        (Role.PARTNER, False, False, False),
    ],
)
def test_what_each_role_may_do(
    role: Role, can_write: bool, sees_personal_data: bool, can_aggregate: bool
) -> None:
    principal = Principal(key_id="k", name="n", role=role)
    assert principal.can_write is can_write
    assert principal.sees_personal_data is sees_personal_data
    assert principal.can_aggregate is can_aggregate


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
async def test_a_created_key_authenticates_with_its_role(store: GraphStore, role: Role) -> None:
    # given a new key
    info, key = await create_key(store, role, "reporting")
    # when it is presented
    principal = await authenticate(store, f"Bearer {key}")
    # then the principal is the key's
    assert principal == Principal(key_id=info.id, name="reporting", role=role)
    assert re.fullmatch(rf"crm_{info.id}_[A-Za-z0-9_-]{{43}}", key)
    assert re.fullmatch(r"[A-Za-z0-9]{12}", info.id)
    assert info.role is role and not info.revoked


async def test_the_bearer_scheme_is_case_insensitive(store: GraphStore) -> None:
    _, key = await create_key(store, "analyst", "bi")
    assert (await authenticate(store, f"bearer  {key} ")).role is Role.ANALYST


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Bearer", "malformed"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("Bearer not-a-key", "malformed"),
        ("Bearer crm_short_secret", "malformed"),
        ("Bearer crm_AAAAAAAAAAAA_" + "x" * 43, "invalid"),  # unknown id
        ("WRONG SECRET", "invalid"),
    ],
)
async def test_bad_headers_are_unauthenticated(
    store: GraphStore, header: str | None, reason: str
) -> None:
    # given a real key in the store (so an unknown id is not just an empty store)
    info, key = await create_key(store, "admin", "ops")
    if header == "WRONG SECRET":
        header = f"Bearer crm_{info.id}_" + "A" * 43
    # when the header is presented, then it is refused as unauthenticated
    with pytest.raises(AuthError) as refused:
        await authenticate(store, header)
    assert refused.value.code == "UNAUTHENTICATED"
    assert reason in refused.value.message
    assert key not in refused.value.message


async def test_a_revoked_key_no_longer_authenticates(store: GraphStore) -> None:
    # given a key in use
    info, key = await create_key(store, "partner", "acme")
    await authenticate(store, f"Bearer {key}")
    # when it is revoked
    assert await revoke_key(store, info.id) is True
    # then it is refused at once, and listed as revoked
    with pytest.raises(AuthError, match="revoked") as refused:
        await authenticate(store, f"Bearer {key}")
    assert refused.value.code == "UNAUTHENTICATED"
    [listed] = await list_keys(store)
    assert listed.revoked and listed.revoked_at is not None


async def test_revoking_twice_keeps_the_first_time_and_unknown_ids_say_so(
    store: GraphStore,
) -> None:
    info, _ = await create_key(store, "analyst", "bi")
    assert await revoke_key(store, info.id)
    [first] = await list_keys(store)
    assert await revoke_key(store, info.id)
    [second] = await list_keys(store)
    assert second.revoked_at == first.revoked_at
    assert await revoke_key(store, "nosuchkey123") is False


async def test_list_shows_no_secret_and_no_hash(store: GraphStore) -> None:
    # given two keys, made a second apart
    made = datetime(2025, 1, 1, tzinfo=UTC)
    first, first_key = await create_key(store, "admin", "ops", now=made)
    second, second_key = await create_key(store, "partner", "acme", now=made + timedelta(seconds=1))
    # when listed
    listed = await list_keys(store)
    # then both are there, oldest first, and nothing secret is
    assert [k.id for k in listed] == [first.id, second.id]
    assert [(k.name, k.role) for k in listed] == [("ops", Role.ADMIN), ("acme", Role.PARTNER)]
    text = repr(listed)
    for key in (first_key, second_key):
        assert key not in text and secret_of(key) not in text
    assert "hash" not in text and "sha256" not in text


async def test_the_store_keeps_a_digest_not_the_secret(store: GraphStore) -> None:
    # given a key
    info, key = await create_key(store, "admin", "ops")
    secret = key.removeprefix(f"crm_{info.id}_")
    # when its node is read
    [row] = await store.read("MATCH (k:ApiKey {id: $id}) RETURN k AS k", {"id": info.id})
    node = row["k"]
    # then no property holds the secret; the hash is a SHA-256 digest
    assert all(secret not in str(value) for value in node.values())
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", node["hash"])
    assert set(node) >= {"id", "name", "role", "hash", "createdAt"}


async def test_key_ids_are_unique(store: GraphStore) -> None:
    created = [await create_key(store, "analyst", f"k{i}") for i in range(30)]
    assert len({info.id for info, _ in created}) == 30
    assert len({key for _, key in created}) == 30


async def test_a_taken_id_creates_nothing(store: GraphStore) -> None:
    # given a key
    info, _ = await create_key(store, "analyst", "bi")
    # when another key is created with the same id
    rows = await store.write(
        api_keys.CREATE_API_KEY,
        {
            "id": info.id,
            "name": "other",
            "role": "admin",
            "hash": "sha256:0",
            "at": 0,
            "scopes": ["admin"],
            "systems": [],
            "segments": [],
            "customerIds": [],
            "expiresAt": None,
            "replaces": None,
        },
    )
    # then nothing is created (create_key would draw another id)
    assert rows == []
    assert [(k.name, k.role) for k in await list_keys(store)] == [("bi", Role.ANALYST)]


async def test_use_is_recorded(store: GraphStore) -> None:
    _, key = await create_key(store, "analyst", "bi")
    [before] = await list_keys(store)
    await authenticate(store, f"Bearer {key}")
    [after] = await list_keys(store)
    assert before.last_used_at is None and after.last_used_at is not None


@pytest.mark.parametrize(
    ("role", "name", "message"),
    [
        ("root", "x", "unknown role"),
        ("admin", "  ", "needs a name"),
        ("admin", "a\nb", "one line"),
        ("admin", "x" * 101, "at most 100"),
    ],
)
async def test_bad_roles_and_names_are_refused(
    store: GraphStore, role: str, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await create_key(store, role, name)
    assert await list_keys(store) == []


# -- middleware ----------------------------------------------------------------------------------


async def test_without_a_key_nothing_runs(store: GraphStore, client_for: Any) -> None:
    # given the app
    recorder = Recorder()
    client = client_for(make_app(store, recorder))
    # when a query is posted without a key, or with a bad one
    missing = await client.post("/graphql", json=QUERY)
    bad = await client.post("/graphql", json=QUERY, headers=bearer("crm_nope"))
    get_query = await client.get("/graphql", params=QUERY, headers={"Accept": "text/html"})
    # then each is a 401 in GraphQL's error shape, and the app never ran
    for response in (missing, bad, get_query):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": "UNAUTHENTICATED"}
        assert error["message"]
    assert recorder.calls == []


async def test_a_valid_key_reaches_the_app_with_its_principal(
    store: GraphStore, client_for: Any
) -> None:
    info, key = await create_key(store, "analyst", "bi")
    recorder = Recorder()
    client = client_for(make_app(store, recorder))
    response = await client.post("/graphql", json=QUERY, headers=bearer(key))
    assert response.status_code == 200 and response.json() == {"data": {"role": "analyst"}}
    [call] = recorder.calls
    assert call["principal"] == Principal(key_id=info.id, name="bi", role=Role.ANALYST)


async def test_revocation_refuses_the_very_next_request(store: GraphStore, client_for: Any) -> None:
    # given a key that works
    info, key = await create_key(store, "admin", "ops")
    client = client_for(make_app(store, Recorder()))
    assert (await client.post("/graphql", json=QUERY, headers=bearer(key))).status_code == 200
    # when it is revoked
    await revoke_key(store, info.id)
    # then the next request is refused
    refused = await client.post("/graphql", json=QUERY, headers=bearer(key))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["errors"][0]["message"]


async def test_the_graphiql_page_needs_no_key(store: GraphStore, client_for: Any) -> None:
    recorder = Recorder()
    client = client_for(make_app(store, recorder))
    page = await client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and "GraphiQL" in page.text
    [call] = recorder.calls
    assert call["principal"] is None


async def test_a_get_not_asking_for_html_needs_a_key(store: GraphStore, client_for: Any) -> None:
    recorder = Recorder()
    client = client_for(make_app(store, recorder))
    for accept in ("application/json", "*/*"):
        response = await client.get("/graphql", headers={"Accept": accept})
        assert response.status_code == 401
    assert recorder.calls == []


async def test_paths_outside_the_prefix_are_open(store: GraphStore, client_for: Any) -> None:
    recorder = Recorder()
    client = client_for(make_app(store, recorder))
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert recorder.calls == [{"path": "/healthz", "principal": None}]
    # a path that merely starts like the prefix is not under it (and is not found)
    assert (await client.post("/graphqlx", json=QUERY)).status_code == 404
    # a path below the prefix is protected
    assert (await client.post("/graphql/batch", json=QUERY)).status_code == 401


async def test_a_request_id_is_echoed_or_made(store: GraphStore, client_for: Any) -> None:
    recorder = Recorder()
    _, key = await create_key(store, "admin", "ops")
    client = client_for(make_app(store, recorder))
    # given a caller's request id, it is echoed and seen by the app
    echoed = await client.post(
        "/graphql", json=QUERY, headers={**bearer(key), "X-Request-ID": "trace-42"}
    )
    assert echoed.headers["x-request-id"] == "trace-42"
    assert recorder.calls[-1]["request_id"] == "trace-42"
    # without one (or with one unfit for a log line), a new one is made
    made = await client.post("/graphql", json=QUERY, headers=bearer(key))
    unfit = await client.post(
        "/graphql", json=QUERY, headers={**bearer(key), "X-Request-ID": "x" * 200}
    )
    for response in (made, unfit):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert made.headers["x-request-id"] != unfit.headers["x-request-id"]
    # refusals carry it too
    refused = await client.post("/graphql", json=QUERY, headers={"X-Request-ID": "r-1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r-1"


async def test_one_log_line_per_request_without_the_key(
    store: GraphStore, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given a key
    info, key = await create_key(store, "partner", "acme")
    client = client_for(make_app(store, Recorder()))
    caplog.set_level(logging.INFO, logger="crm_graph.access")
    # when it is used, and a request is refused
    await client.post(
        "/graphql?operation=x", json=QUERY, headers={**bearer(key), "X-Request-ID": "req-1"}
    )
    await client.post("/graphql", json=QUERY, headers={**bearer(key + "x"), "X-Request-ID": "r2"})
    # then there is one line each: method, path, status, ms, key id, request id, operation,
    # cost (none here: the tiny app is no GraphQL); never the key
    lines = [r.getMessage() for r in caplog.records if r.name == "crm_graph.access"]
    assert len(lines) == 2
    assert re.fullmatch(
        rf"POST /graphql 200 \d+\.\dms key={info.id} request=req-1 operation=- cost=-", lines[0]
    )
    assert re.fullmatch(
        r"POST /graphql 401 \d+\.\dms key=- request=r2 operation=- cost=-", lines[1]
    )
    secret = key.removeprefix(f"crm_{info.id}_")
    assert all(secret not in line and "operation=x" not in line for line in lines)


async def test_a_store_that_cannot_answer_is_a_503(tmp_path: Path, client_for: Any) -> None:
    # given a store whose server has stopped
    gone = await open_store(StoreSettings(kind="embedded", data_dir=tmp_path / "gone"))
    await gone.close()  # the server stops: it was the only user
    recorder = Recorder()
    client = client_for(make_app(gone, recorder))
    # when a request with a well-formed key comes
    response = await client.post(
        "/graphql", json=QUERY, headers=bearer("crm_AAAAAAAAAAAA_" + "A" * 43)
    )
    # then it is refused as unavailable, not as unauthenticated, and nothing runs
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
    assert recorder.calls == []


async def test_a_websocket_under_the_prefix_needs_a_key(store: GraphStore) -> None:
    # given the middleware around an app that records whether it ran
    ran: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        ran.append(scope["state"]["principal"])

    app = Starlette()
    app.state.store = store
    middleware = AuthMiddleware(inner)
    _, key = await create_key(store, "admin", "ops")
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    def scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {"type": "websocket", "path": "/graphql", "headers": headers, "app": app}

    # when one connects without a key, then it is closed before the app runs
    await middleware(scope([]), receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}] and ran == []
    # when one connects with a key, then the app runs with the principal
    await middleware(scope([(b"authorization", f"Bearer {key}".encode())]), receive, send)
    assert [p.role for p in ran] == [Role.ADMIN]


async def test_a_graphql_websocket_without_a_header_brings_its_key_in_connection_init(
    store: GraphStore,
) -> None:
    # given the middleware around an app that records whether it ran
    ran: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        ran.append(scope["state"]["principal"])

    app = Starlette()
    app.state.store = store
    middleware = AuthMiddleware(inner)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    offer = [(b"sec-websocket-protocol", b"graphql-ws, graphql-transport-ws")]
    scope = {"type": "websocket", "path": "/graphql", "headers": offer, "app": app}
    # when one offering graphql-transport-ws connects without a header, then the app runs
    # without a principal (it refuses every operation until connection_init brings a key:
    # tests/api/test_subscriptions.py)
    await middleware(scope, receive, send)
    assert ran == [None] and sent == []
    # a bad header is still refused before the app runs
    bad = {**scope, "headers": [*offer, (b"authorization", b"Bearer nope")]}
    await middleware(bad, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}] and ran == [None]


def test_a_bad_prefix_fails_at_construction() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None: ...

    for prefix in ("graphql", "/graphql/"):
        with pytest.raises(ValueError, match="protected_prefix"):
            AuthMiddleware(inner, protected_prefix=prefix)
