"""The app's settings: one typed, frozen object, read once at start-up, every malformed value a
one-line error naming the setting and the value.

`Settings.from_env()` reads the environment once; the command line reads it in `main` and hands
it to every command, and `create_app` takes it (or reads it once itself when given only the
store's settings). Nothing else in the app reads `os.environ`. The store's own settings
(`CRM_GRAPH_STORE`, `CRM_GRAPH_DATA_DIR`, `CRM_GRAPH_APPENDFSYNC`, `CRM_GRAPH_GRAPH`, `NEO4J_*`,
`CRM_GRAPH_CURRENCY`) are parsed by `crm_graph.graph.settings.parse_store` into `Settings.store`.

Adding a setting is a one-place change: one field on `Settings`, declared with `setting(NAME,
default, parser)`; a parser takes the stripped text and returns the value or raises
ValueError with what was expected ("a whole number from 1 to 65535"), which becomes
"NAME must be <that>, got 'text'". An unset or blank variable takes the default. Then add the
variable to the settings table in the README's command-line section.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from crm_graph.graph.errors import ConfigurationError
from crm_graph.graph.settings import StoreSettings, parse_store

T = TypeVar("T")
Parser = Callable[[str], Any]
EnvMode = Literal["development", "production"]


class SettingsError(ConfigurationError, ValueError):
    """A setting is malformed; the message names it and the value it had."""


def setting(name: str, default: T, parse: Parser) -> T:
    """A field of `Settings` read from the environment variable `name` with `parse`."""
    return field(default=default, metadata={"env": name, "parse": parse})


# -- parsers: text in, value out, ValueError("what was expected") otherwise ----------------------


def whole(low: int, high: int | None = None) -> Parser:
    """A whole number in [low, high]."""

    def parse(text: str) -> int:
        expected = f"a whole number from {low} to {high}" if high else f"a whole number ≥ {low}"
        try:
            value = int(text)
        except ValueError:
            raise ValueError(expected) from None
        if value < low or (high is not None and value > high):
            raise ValueError(expected)
        return value

    return parse


def non_negative(text: str) -> float:
    """A finite number ≥ 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise ValueError("a number ≥ 0")
    return value


def seconds(most: float) -> Parser:
    """A number of seconds from 0 to `most`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value <= most:
            raise ValueError(f"a number of seconds from 0 to {most:g}")
        return value

    return parse


def poll_interval(text: str) -> float:
    """Seconds between two reads of something: 0.01 to 60 (0 would read without pause)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.01 <= value <= 60:
        raise ValueError("a number of seconds from 0.01 to 60")
    return value


def positive(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or math.isinf(value):
        raise ValueError("a number > 0")
    return value


def switch(text: str) -> bool:
    """On or off."""
    word = text.lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError("1/true/on or 0/false/off")


def cors(text: str) -> tuple[str, ...]:
    """Origins, comma-separated (`crm_graph.api.cors`, whose messages name the entry)."""
    from crm_graph.api.cors import SETTING, cors_origins

    try:
        return cors_origins({SETTING: text})
    except ConfigurationError as e:
        raise SettingsError(str(e)) from None


def access_log(text: str) -> str:
    """`text`, `json` or `off` (`crm_graph.api.access_log`)."""
    from crm_graph.api.access_log import SETTING, access_log_format

    try:
        return access_log_format({SETTING: text})
    except ConfigurationError as e:
        raise SettingsError(str(e)) from None


def env_mode(text: str) -> EnvMode:
    mode = text.lower()
    if mode not in ("development", "production"):
        raise ValueError("'production' or 'development'")
    return "production" if mode == "production" else "development"


def region(text: str) -> str:
    code = text.upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError("a two-letter ISO country code such as GB")
    return code


def text_value(text: str) -> str:
    return text


def path(text: str) -> Path:
    return Path(text)


# -- the settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything the app and the command line are configured with. Defaults are the documented
    ones; `Settings()` is the default app on the default embedded store."""

    store: StoreSettings = field(default_factory=StoreSettings)
    host: str = setting("CRM_GRAPH_HOST", "127.0.0.1", text_value)
    port: int = setting("CRM_GRAPH_PORT", 8000, whole(0, 65535))
    env: EnvMode = setting("CRM_GRAPH_ENV", "development", env_mode)  # noqa: RUF009 (a field)
    max_depth: int = setting("CRM_GRAPH_MAX_DEPTH", 10, whole(1))
    max_tokens: int = setting("CRM_GRAPH_MAX_TOKENS", 2000, whole(1))
    max_aliases: int = setting("CRM_GRAPH_MAX_ALIASES", 30, whole(1))
    max_body: int = setting("CRM_GRAPH_MAX_BODY", 64 * 1024, whole(1))
    cors_origins: tuple[str, ...] = setting("CRM_GRAPH_CORS_ORIGINS", (), cors)
    """Origins a browser may call the API from; none by default."""
    access_log: Literal["text", "json", "off"] = setting("CRM_GRAPH_ACCESS_LOG", "text", access_log)
    """The access log's form when serving."""
    max_cost: int = setting("CRM_GRAPH_MAX_COST", 100_000, whole(1))
    """The most a query may cost (`crm_graph.api.cost`); over it, refused before it runs."""
    statement_timeout: float = setting("CRM_GRAPH_STATEMENT_TIMEOUT", 5.0, non_negative)
    """Seconds a statement sent for a GraphQL request may run in the store; 0: no timeout."""
    introspection: bool | None = setting("CRM_GRAPH_INTROSPECTION", None, switch)
    """Introspection and "Did you mean" suggestions; unset: on, but off in production."""
    rate_limit: float = setting("CRM_GRAPH_RATE_LIMIT", 50.0, non_negative)
    """Requests per second per key; 0 turns the limit off."""
    rate_burst: int = setting("CRM_GRAPH_RATE_BURST", 100, whole(0))
    """Requests a key may make at once; 0 turns the limit off."""
    rate_points: int = setting("CRM_GRAPH_RATE_POINTS", 1_000_000, whole(0))
    """Points a key may spend on queries' costs per window; 0 turns the limit off."""
    rate_window: float = setting("CRM_GRAPH_RATE_WINDOW", 60.0, positive)
    """Seconds in which a key's points are refilled whole."""
    auth_failures: float = setting("CRM_GRAPH_AUTH_FAILURES", 30.0, non_negative)
    """Failed authentications per minute per client address; 0 turns the limit off."""
    auth_failure_burst: int = setting("CRM_GRAPH_AUTH_FAILURE_BURST", 20, whole(1))
    """Failed authentications a client address may make at once."""
    key_cache_seconds: float = setting("CRM_GRAPH_KEY_CACHE_SECONDS", 1.0, seconds(60))
    """How long a server reuses a successful key look-up (a revoke waits at most that); 0: off."""
    audit_flush_seconds: float = setting("CRM_GRAPH_AUDIT_FLUSH_SECONDS", 1.0, seconds(60))
    """How often a server writes its buffered audit entries (`crm_graph.api.audit_trail`); 0: each
    request's entry is written after it, in a statement of its own."""
    subscriptions_per_key: int = setting("CRM_GRAPH_SUBSCRIPTIONS_PER_KEY", 10, whole(1, 10_000))
    """GraphQL subscriptions one key may have open at once, over all its connections."""
    event_poll_seconds: float = setting("CRM_GRAPH_EVENT_POLL_SECONDS", 0.25, poll_interval)
    """How often the server reads new events from the outbox for its subscriptions."""
    model_dir_setting: Path | None = setting("CRM_GRAPH_MODEL_DIR", None, path)  # noqa: RUF009
    default_region: str | None = setting("CRM_GRAPH_DEFAULT_REGION", None, region)
    """Country of phone numbers written without +CC."""
    audit_days: float = setting("CRM_GRAPH_AUDIT_DAYS", 365.0, non_negative)
    """Days an audit entry is kept: older ones are pruned by the server (hourly) and by
    `crm-graph audit --prune` (unless given --days)."""
    webhooks: bool = setting("CRM_GRAPH_WEBHOOKS", True, switch)
    """Whether `crm-graph serve` runs the webhook delivery worker (off: run `crm-graph webhooks
    run` beside it, or deliver nothing)."""
    webhook_timeout: float = setting("CRM_GRAPH_WEBHOOK_TIMEOUT", 10.0, positive)
    """Seconds a receiver has to answer one delivery (connect, send, read)."""
    webhook_retry_base: float = setting("CRM_GRAPH_WEBHOOK_RETRY_BASE", 1.0, positive)
    webhook_retry_max: float = setting("CRM_GRAPH_WEBHOOK_RETRY_MAX", 3600.0, positive)
    """A failed delivery is tried again after a random wait between 0 and base x 2^(attempts-1)
    seconds, at most max (exponential backoff with full jitter)."""
    webhook_give_up: float = setting("CRM_GRAPH_WEBHOOK_GIVE_UP", 86400.0, positive)
    """Seconds after its first attempt an event still undelivered fails its subscription
    (stopped, replayable)."""
    webhook_lease: float = setting("CRM_GRAPH_WEBHOOK_LEASE", 30.0, positive)
    """Seconds a worker's hold on a subscription lasts unless renewed: after a worker was
    killed, another (or the restarted one) takes its subscriptions over within this time."""
    webhook_poll: float = setting("CRM_GRAPH_WEBHOOK_POLL", 0.5, positive)
    """Seconds between two looks at the outbox for new events."""
    event_retention_days: int = setting("CRM_GRAPH_EVENT_RETENTION_DAYS", 30, whole(1))
    """Events (and delivery records) older than this many days are deleted by the worker."""

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def model_dir(self) -> Path:
        """Where fitted models go: CRM_GRAPH_MODEL_DIR, or `models` in the data directory."""
        return self.model_dir_setting or self.store.data_dir / "models"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        store: str | StoreSettings | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Read every setting from `env` (default: the process environment), once. `store` and
        `data_dir` (the command line's `--store` and `--data-dir`) win over the environment; a
        `StoreSettings` is taken as it is. Raises `SettingsError` (or the store's
        `ConfigurationError`) naming the first malformed setting."""
        env = os.environ if env is None else env
        if not isinstance(store, StoreSettings):
            store = parse_store(store, data_dir=data_dir, env=env)
        return cls(store=store, **read(env))


def read(env: Mapping[str, str], names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The `Settings` fields read from `env` (only those named, when `names` is given), parsed;
    unset or blank variables are left out, so the fields keep their defaults."""
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        if "env" not in spec.metadata or (names is not None and spec.name not in names):
            continue
        name, parse = spec.metadata["env"], spec.metadata["parse"]
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            values[spec.name] = parse(raw)
        except SettingsError:  # a parser that words its own message, naming the setting
            raise
        except ValueError as e:
            raise SettingsError(f"{name} must be {e}, got {raw!r}") from None
    return values


def default(name: str) -> Any:
    """The default of a `Settings` field, by field name."""
    spec = next(f for f in fields(Settings) if f.name == name)
    return None if spec.default is MISSING else spec.default


def variables() -> dict[str, str]:
    """Each environment variable `Settings` reads, with its field's name."""
    return {f.metadata["env"]: f.name for f in fields(Settings) if "env" in f.metadata}
