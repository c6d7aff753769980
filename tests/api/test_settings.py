"""The app's settings: one typed object read once; every malformed value refused with the
setting's name and the value, in one line, by the real command line too."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.settings import Settings, SettingsError, variables
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.production) == ("127.0.0.1", 8000, False)
    assert (settings.max_depth, settings.max_tokens, settings.max_aliases) == (10, 2000, 30)
    assert (settings.max_body, settings.rate_limit, settings.rate_burst) == (65536, 50.0, 100)
    assert settings.model_dir == Path("data") / "models" and settings.default_region is None
    assert settings.audit_days == 365.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_every_setting_is_read_from_its_variable() -> None:
    env = {
        "CRM_GRAPH_HOST": "0.0.0.0", "CRM_GRAPH_PORT": " 8001 ", "CRM_GRAPH_ENV": "Production",
        "CRM_GRAPH_MAX_DEPTH": "4", "CRM_GRAPH_MAX_TOKENS": "500", "CRM_GRAPH_MAX_ALIASES": "3",
        "CRM_GRAPH_MAX_BODY": "1024", "CRM_GRAPH_RATE_LIMIT": "2.5", "CRM_GRAPH_RATE_BURST": "0",
        "CRM_GRAPH_MODEL_DIR": "/srv/models", "CRM_GRAPH_DEFAULT_REGION": "gb",
        "CRM_GRAPH_DATA_DIR": "/srv/crm", "CRM_GRAPH_MAX_COST": "900",
        "CRM_GRAPH_STATEMENT_TIMEOUT": "0.5", "CRM_GRAPH_INTROSPECTION": "on",
        "CRM_GRAPH_RATE_POINTS": "5000", "CRM_GRAPH_RATE_WINDOW": "30",
        "CRM_GRAPH_AUTH_FAILURES": "6", "CRM_GRAPH_AUTH_FAILURE_BURST": "3",
        "CRM_GRAPH_CORS_ORIGINS": "https://app.example.com", "CRM_GRAPH_ACCESS_LOG": "json",
        "CRM_GRAPH_KEY_CACHE_SECONDS": "0.5", "CRM_GRAPH_AUDIT_DAYS": "30",
        "CRM_GRAPH_SUBSCRIPTIONS_PER_KEY": "3",
        "CRM_GRAPH_EVENT_POLL_SECONDS": "0.1", "CRM_GRAPH_AUDIT_FLUSH_SECONDS": "2",
        "CRM_GRAPH_WEBHOOKS": "off", "CRM_GRAPH_WEBHOOK_TIMEOUT": "3",
        "CRM_GRAPH_WEBHOOK_RETRY_BASE": "0.5", "CRM_GRAPH_WEBHOOK_RETRY_MAX": "60",
        "CRM_GRAPH_WEBHOOK_GIVE_UP": "7200", "CRM_GRAPH_WEBHOOK_LEASE": "15",
        "CRM_GRAPH_WEBHOOK_POLL": "0.2", "CRM_GRAPH_EVENT_RETENTION_DAYS": "7",
    }  # fmt: skip
    settings = Settings.from_env(env)
    assert set(variables()) <= set(env) | {"CRM_GRAPH_STORE"}
    assert (settings.host, settings.port, settings.production) == ("0.0.0.0", 8001, True)
    assert (settings.max_depth, settings.max_tokens, settings.max_aliases) == (4, 500, 3)
    assert (settings.max_body, settings.rate_limit, settings.rate_burst) == (1024, 2.5, 0)
    assert settings.model_dir == Path("/srv/models") and settings.default_region == "GB"
    assert settings.store.data_dir == Path("/srv/crm")
    assert (settings.max_cost, settings.statement_timeout, settings.introspection) == (
        900,
        0.5,
        True,
    )
    assert (settings.rate_points, settings.rate_window) == (5000, 30.0)
    assert (settings.auth_failures, settings.auth_failure_burst) == (6.0, 3)
    assert settings.cors_origins == ("https://app.example.com",) and settings.access_log == "json"
    assert settings.key_cache_seconds == 0.5
    assert settings.audit_days == 30.0
    assert (settings.subscriptions_per_key, settings.event_poll_seconds) == (3, 0.1)
    assert settings.audit_flush_seconds == 2.0
    assert (settings.webhooks, settings.webhook_timeout, settings.webhook_poll) == (False, 3.0, 0.2)
    assert (settings.webhook_retry_base, settings.webhook_retry_max) == (0.5, 60.0)
    assert (settings.webhook_give_up, settings.webhook_lease) == (7200.0, 15.0)
    assert settings.event_retention_days == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CRM_GRAPH_PORT", "abc"),
        ("CRM_GRAPH_PORT", "70000"),
        ("CRM_GRAPH_ENV", "prod"),
        ("CRM_GRAPH_MAX_DEPTH", "0"),
        ("CRM_GRAPH_MAX_TOKENS", "1e3"),
        ("CRM_GRAPH_MAX_BODY", "64k"),
        ("CRM_GRAPH_RATE_LIMIT", "nan"),
        ("CRM_GRAPH_RATE_BURST", "-1"),
        ("CRM_GRAPH_DEFAULT_REGION", "GBR"),
        ("CRM_GRAPH_MAX_COST", "lots"),
        ("CRM_GRAPH_STATEMENT_TIMEOUT", "soon"),
        ("CRM_GRAPH_INTROSPECTION", "maybe"),
        ("CRM_GRAPH_RATE_WINDOW", "0"),
        ("CRM_GRAPH_AUTH_FAILURE_BURST", "0"),
        ("CRM_GRAPH_AUDIT_DAYS", "a year"),
        ("CRM_GRAPH_SUBSCRIPTIONS_PER_KEY", "0"),
        ("CRM_GRAPH_EVENT_POLL_SECONDS", "0"),
        ("CRM_GRAPH_AUDIT_FLUSH_SECONDS", "-1"),
        ("CRM_GRAPH_WEBHOOKS", "sometimes"),
        ("CRM_GRAPH_WEBHOOK_TIMEOUT", "0"),
        ("CRM_GRAPH_EVENT_RETENTION_DAYS", "0"),
    ],
)
def test_a_malformed_value_names_the_setting_and_the_value(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name} must be ") and message.endswith(f"got {value!r}")
    assert "\n" not in message


def test_the_command_line_says_which_setting_is_malformed_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CRM_GRAPH_PORT": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "crm_graph.api.cli", "--data-dir", str(tmp_path), "status"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr == (
        "crm-graph status: CRM_GRAPH_PORT must be a whole number from 0 to 65535, got 'abc'\n"
    )


def test_importing_the_schema_reads_no_setting() -> None:
    # before: api/schema.py did int(os.environ[...]) at import time, a traceback for any typo
    env = {"PATH": "/usr/bin:/bin", "CRM_GRAPH_MAX_DEPTH": "ten"}
    done = subprocess.run(
        [sys.executable, "-c", "import crm_graph.api.schema"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_the_app_takes_its_limits_from_the_settings(store: GraphStore) -> None:
    # given an app whose settings allow a depth of 2 and bodies of 300 bytes
    settings = Settings(store=StoreSettings(), max_depth=2, max_body=300)
    app = create_app(settings, store=store, rate_limiter=None)
    _, key = await create_key(store, Role.ADMIN, "settings test")
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        # then a query of depth 2 runs and one of depth 3 is refused for its depth
        shallow = await client.post(
            "/graphql", json={"query": "{ customers(first: 1) { edges { cursor } } }"},
            headers=headers,
        )  # fmt: skip
        assert shallow.status_code == 200 and "errors" not in shallow.json(), shallow.text
        deep = await client.post(
            "/graphql", json={"query": "{ customers(first: 1) { edges { node { id } } } }"},
            headers=headers,
        )  # fmt: skip
        assert "exceeds maximum operation depth of 2" in deep.json()["errors"][0]["message"]
        # and a body over 300 bytes is refused
        big = await client.post(
            "/graphql", json={"query": "{ __typename }", "variables": {"x": "y" * 400}},
            headers=headers,
        )  # fmt: skip
        assert big.status_code == 413
