from __future__ import annotations

from pathlib import Path

import pytest

from crm_graph.graph.errors import ConfigurationError
from crm_graph.graph.settings import parse_store


def test_embedded_is_the_default() -> None:
    settings = parse_store(None, env={})
    assert settings.kind == "embedded"
    assert settings.data_dir == Path("data")
    assert settings.appendfsync == "everysec"


def test_environment_and_arguments() -> None:
    env = {
        "CRM_GRAPH_STORE": "embedded",
        "CRM_GRAPH_DATA_DIR": "/srv/crm",
        "CRM_GRAPH_APPENDFSYNC": "always",
    }
    assert parse_store(None, env=env).data_dir == Path("/srv/crm")
    assert parse_store(None, env=env).appendfsync == "always"
    assert parse_store(None, data_dir="/other", env=env).data_dir == Path("/other")


def test_external_falkordb_url() -> None:
    settings = parse_store("falkordb://:s3cret@db.internal:6380/sales", env={})
    assert (settings.kind, settings.host, settings.port, settings.graph_name) == (
        "falkordb",
        "db.internal",
        6380,
        "sales",
    )
    assert settings.password == "s3cret"
    assert "s3cret" not in settings.description


def test_neo4j_credentials_from_url_or_environment() -> None:
    from_url = parse_store("neo4j://neo:pw@graph:7687", env={})
    assert (from_url.kind, from_url.url, from_url.username, from_url.password) == (
        "neo4j",
        "neo4j://graph:7687",
        "neo",
        "pw",
    )
    assert "pw" not in from_url.description
    from_env = parse_store("bolt://graph", env={"NEO4J_USER": "u", "NEO4J_PASSWORD": "p"})
    assert (from_env.username, from_env.password) == ("u", "p")


@pytest.mark.parametrize(
    ("store", "env", "words"),
    [
        ("mysql://x", {}, "CRM_GRAPH_STORE must be"),
        ("neo4j://graph:7687", {}, "NEO4J_USER"),
        ("falkordb://", {}, "names no host"),
        ("falkordb://host:notaport", {}, "malformed port"),
        ("embedded", {"CRM_GRAPH_APPENDFSYNC": "sometimes"}, "CRM_GRAPH_APPENDFSYNC"),
    ],
)
def test_bad_settings_name_what_is_wrong(store: str, env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        parse_store(store, env=env)
