"""Cross-origin requests: which browser origins may call the API (`CRM_GRAPH_CORS_ORIGINS`).

None by default: a page served from another origin cannot read the API's answers. Listing an
origin lets a page there call `/graphql` with a key in `Authorization` (a bearer key, never a
cookie: no credentials mode). The preflight `OPTIONS` a browser sends first is answered by
Starlette's `CORSMiddleware`, placed outside authentication (a preflight carries no key), and
refused (400, no `Access-Control-Allow-Origin`) for an origin not listed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from crm_graph.graph.errors import ConfigurationError

SETTING = "CRM_GRAPH_CORS_ORIGINS"
ALLOWED_METHODS = ("GET", "POST")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
EXPOSED_HEADERS = (
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may keep a preflight's answer."""

_ORIGIN = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)


def cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """The origins `CRM_GRAPH_CORS_ORIGINS` lists (comma-separated), each checked: an origin is
    `http(s)://host[:port]`, nothing after it (no path, no trailing slash), no wildcard. A
    `ConfigurationError` names the setting and the entry otherwise."""
    value = env.get(SETTING, "")
    origins: list[str] = []
    for position, entry in enumerate(value.split(","), start=1):
        origin = entry.strip()
        if not origin:
            if value.strip():
                raise ConfigurationError(
                    f"{SETTING}: entry {position} is empty; list origins separated by commas, "
                    "such as https://app.example.com,http://127.0.0.1:5173"
                )
            continue
        origins.append(_checked(origin, position))
    return tuple(dict.fromkeys(origins))


def _checked(origin: str, position: int) -> str:
    where = f"{SETTING}: entry {position} ({origin[:80]!r})"
    if origin == "*" or "*" in origin:
        raise ConfigurationError(
            f"{where}: wildcards are not accepted; list each origin allowed to call the API"
        )
    found = _ORIGIN.fullmatch(origin)
    if found is None:
        raise ConfigurationError(
            f"{where} is not an origin: write scheme://host[:port], http or https, with no path "
            "and no trailing slash, such as https://app.example.com"
        )
    port = found.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ConfigurationError(f"{where}: port {port} is out of range (1-65535)")
    # browsers send the scheme and host in lower case
    return f"{found.group('scheme').lower()}://{found.group('host').lower()}" + (
        f":{port}" if port else ""
    )


def cors_middleware(origins: tuple[str, ...]) -> list[Middleware]:
    """The middleware answering preflights and tagging answers for `origins` (none when empty:
    then no page on another origin may read an answer)."""
    if not origins:
        return []
    options: dict[str, Any] = {
        "allow_origins": list(origins),
        "allow_methods": list(ALLOWED_METHODS),
        "allow_headers": list(ALLOWED_HEADERS),
        "expose_headers": list(EXPOSED_HEADERS),
        "allow_credentials": False,
        "max_age": PREFLIGHT_MAX_AGE,
    }
    return [Middleware(CORSMiddleware, **options)]
