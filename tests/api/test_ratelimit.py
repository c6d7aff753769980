"""The per-key token bucket, on an injected clock (no sleeping), alone and behind the
middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.middleware import AuthMiddleware
from crm_graph.api.auth.ratelimit import RateLimiter, RateLimitSettingsError
from crm_graph.graph.store import GraphStore


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the bucket ----------------------------------------------------------------------------------


def test_a_burst_is_allowed_then_refused_with_a_retry_time() -> None:
    # given 2 requests a second, bursts of 5
    clock = Clock()
    limiter = RateLimiter(rate_per_second=2, burst=5, clock=clock)
    # when 6 come at once
    decisions = [limiter.take("key") for _ in range(6)]
    # then 5 pass and the 6th is told to wait half a second (a whole second in the header)
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert decisions[-1].retry_after == pytest.approx(0.5)
    assert decisions[-1].retry_after_header == "1"


def test_the_bucket_refills_over_time_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=2, burst=3, clock=clock)
    assert all(limiter.take("key").allowed for _ in range(3))
    assert not limiter.take("key").allowed
    # half a second brings one token back
    clock.advance(0.5)
    assert limiter.take("key").allowed
    assert not limiter.take("key").allowed
    # a long pause refills to the burst, not beyond
    clock.advance(3600)
    assert [limiter.take("key").allowed for _ in range(4)] == [True, True, True, False]


def test_a_refusal_spends_nothing() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=1, burst=1, clock=clock)
    assert limiter.take("key").allowed
    for _ in range(10):  # a client hammering while refused
        assert not limiter.take("key").allowed
    clock.advance(1)
    assert limiter.take("key").allowed


def test_each_key_has_its_own_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=1, burst=2, clock=clock)
    assert [limiter.take("flood").allowed for _ in range(3)] == [True, True, False]
    assert [limiter.take("calm").allowed for _ in range(2)] == [True, True]


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_second=0.25, burst=1, clock=clock)
    limiter.take("key")
    refused = limiter.take("key")
    assert refused.retry_after == pytest.approx(4.0) and refused.retry_after_header == "4"
    clock.advance(3.5)
    assert limiter.take("key").retry_after_header == "1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (50.0, 100)),
        ({"CRM_GRAPH_RATE_LIMIT": "5", "CRM_GRAPH_RATE_BURST": "10"}, (5.0, 10)),
        ({"CRM_GRAPH_RATE_LIMIT": "0.5"}, (0.5, 100)),
        ({"CRM_GRAPH_RATE_LIMIT": "0"}, None),
        ({"CRM_GRAPH_RATE_BURST": "0"}, None),
    ],
)
def test_settings_from_the_environment(
    env: dict[str, str], expected: tuple[float, int] | None
) -> None:
    limiter = RateLimiter.from_env(env)
    if expected is None:
        assert limiter is None
    else:
        assert limiter is not None
        assert (limiter.rate_per_second, limiter.burst) == expected


@pytest.mark.parametrize(
    "env",
    [
        {"CRM_GRAPH_RATE_LIMIT": "fast"},
        {"CRM_GRAPH_RATE_LIMIT": "-1"},
        {"CRM_GRAPH_RATE_LIMIT": "nan"},
        {"CRM_GRAPH_RATE_BURST": "2.5"},
    ],
)
def test_malformed_settings_name_the_variable(env: dict[str, str]) -> None:
    [name] = env
    with pytest.raises(RateLimitSettingsError, match=name):
        RateLimiter.from_env(env)


def test_a_bad_limiter_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="rate_per_second"):
        RateLimiter(rate_per_second=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(rate_per_second=1, burst=0)


# -- behind the middleware -----------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runs() -> list[str]:
    """The paths of the requests that reached the app."""
    return []


@pytest.fixture
async def client(
    store: GraphStore, clock: Clock, runs: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    """An app allowing 1 request a second per key, bursts of 2, recording its runs."""

    async def graphql(request: Request) -> JSONResponse:
        runs.append(request.url.path)
        return JSONResponse({"data": {}})

    limiter = RateLimiter(rate_per_second=1, burst=2, clock=clock)
    app = Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"])],
        middleware=[Middleware(AuthMiddleware, rate_limiter=limiter)],
    )
    app.state.store = store  # ASGITransport runs no lifespan: hand the app its store
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as opened:
        yield opened


async def test_over_the_rate_a_key_gets_429_and_nothing_runs(
    store: GraphStore, client: httpx.AsyncClient, clock: Clock, runs: list[str]
) -> None:
    # given a key
    _, key = await create_key(store, "analyst", "bi")
    headers = {"Authorization": f"Bearer {key}"}
    # when it sends three requests at once
    statuses = [
        (await client.post("/graphql", json={"query": "{ a }"}, headers=headers)).status_code
        for _ in range(3)
    ]
    # then the third is refused with a retry time and GraphQL's error shape
    assert statuses == [200, 200, 429]
    refused = await client.post("/graphql", json={"query": "{ a }"}, headers=headers)
    assert refused.headers["retry-after"] == "1"
    [error] = refused.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED"}
    assert len(runs) == 2
    # and after a second the key may go on
    clock.advance(1)
    ok = await client.post("/graphql", json={"query": "{ a }"}, headers=headers)
    assert ok.status_code == 200


async def test_one_keys_flood_does_not_limit_another(
    store: GraphStore, client: httpx.AsyncClient
) -> None:
    _, flood = await create_key(store, "partner", "noisy")
    _, calm = await create_key(store, "partner", "quiet")
    flooded = [
        (await client.post("/graphql", json={}, headers={"Authorization": f"Bearer {flood}"}))
        for _ in range(5)
    ]
    assert [r.status_code for r in flooded] == [200, 200, 429, 429, 429]
    calm_response = await client.post(
        "/graphql", json={}, headers={"Authorization": f"Bearer {calm}"}
    )
    assert calm_response.status_code == 200


# -- points and failed authentication ------------------------------------------------------------


def test_points_are_spent_by_cost_and_refill_over_the_window() -> None:
    from crm_graph.api.auth.ratelimit import PointsLimiter

    clock = Clock()
    limiter = PointsLimiter(points=1000, window_seconds=60, clock=clock)
    assert limiter.charge("k", 600).remaining == 400
    refused = limiter.charge("k", 500)
    assert not refused.allowed and refused.remaining == 400  # nothing spent when refused
    assert refused.retry_after == pytest.approx(100 * 60 / 1000)
    clock.advance(6)  # 100 points back
    assert limiter.charge("k", 500).allowed
    assert limiter.charge("other", 0).remaining == 999  # at least one point, per key


def test_failed_authentications_are_limited_per_address_and_vouched_keys_pass() -> None:
    from crm_graph.api.auth.failures import FailedAuthLimiter

    clock = Clock()
    limiter = FailedAuthLimiter(per_minute=60, burst=3, clock=clock)
    for _ in range(3):
        assert limiter.check("10.0.0.1").allowed
        limiter.failed("10.0.0.1")
    assert not limiter.check("10.0.0.1").allowed
    assert limiter.check("10.0.0.2").allowed  # another address is not affected
    limiter.vouch("Bearer good")
    assert limiter.vouched("Bearer good") and not limiter.vouched("Bearer bad")
    clock.advance(1)  # one failure a second comes back
    assert limiter.check("10.0.0.1").allowed


@pytest.mark.parametrize(
    ("name", "value"),
    [("CRM_GRAPH_RATE_POINTS", "lots"), ("CRM_GRAPH_RATE_WINDOW", "0"),
     ("CRM_GRAPH_AUTH_FAILURES", "-1"), ("CRM_GRAPH_AUTH_FAILURE_BURST", "0")],
)  # fmt: skip
def test_malformed_limit_settings_name_themselves(name: str, value: str) -> None:
    from crm_graph.api.auth.failures import FailedAuthLimiter
    from crm_graph.api.auth.ratelimit import PointsLimiter

    with pytest.raises(RateLimitSettingsError, match=name):
        PointsLimiter.from_env({name: value})
        FailedAuthLimiter.from_env({name: value})
