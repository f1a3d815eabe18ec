"""Settings, read once from the environment and `.env`, and the database URL rules.

Over 300 lines because it is the one place every setting is declared, each with its
default, bounds and description (what `.env.example` and the README list).
"""

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

BACKEND_DIR = Path(__file__).resolve().parents[2]

# The two databases every deployment has; EXTRA_DATABASES adds more by name.
AUTH, APP = "auth", "app"
DatabaseName = str
_NAME = re.compile(r"[a-z][a-z0-9_]{0,30}")
# `<NAME>_DATABASE_<KEY>`: how an extra database is configured.
_EXTRA_VARIABLE = re.compile(r"([a-z][a-z0-9_]*)_database_(url|read_only|pool_size|replica_urls)")

# Where the versioned API is mounted; a constant, since OpenAPI's token URL names it.
API_PREFIX = "/api/v1"

# A development-only key: the validator refuses it anywhere else.
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-secret-key-change-me"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+aiomysql",
    "sqlite": "sqlite+aiosqlite",
}
_BACKEND_ALIASES = {
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}
_URL_EXAMPLES = (
    "postgresql://user:password@localhost:5432/dbname, "
    "mysql://user:password@localhost:3306/dbname or sqlite:///path/to/file.db"
)


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class DatabaseMode(StrEnum):
    """How the two databases were resolved; shown on start-up and in `/health/ready`."""

    SEPARATE = "separate"  # each database has its own URL
    SINGLE = "single"  # DATABASE_URL only: both databases live in one
    EMBEDDED = "embedded"  # nothing set: two SQLite files under DATA_DIR


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable and never a password."""


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """One named database, as configured: where it is and how to treat it."""

    name: str
    url: URL
    pool_size: int
    read_only: bool = False
    replica_urls: tuple[URL, ...] = ()

    @property
    def variable(self) -> str:
        """The variable that sets its URL, for messages."""
        return f"{self.name.upper()}_DATABASE_URL"


class _DatabaseVariables(PydanticBaseSettingsSource):
    """Collects `<NAME>_DATABASE_URL`, `_READ_ONLY`, `_POOL_SIZE` and `_REPLICA_URLS` from
    the environment and the .env files: an extra database's name is itself a setting
    (EXTRA_DATABASES), so its variables cannot be declared as fields."""

    def __init__(self, settings_cls: type[BaseSettings], *sources: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.sources = sources  # lowest precedence first

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is gathered in __call__

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        for source in self.sources:
            for key, value in source.env_vars.items():
                if value is not None and _EXTRA_VARIABLE.fullmatch(key.lower()):
                    found[key.lower()] = value
        return {"database_variables": found} if found else {}


def normalize_database_url(variable: str, raw: str) -> URL:
    """Parse a URL and rewrite its scheme to the async driver we ship, or refuse it."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigError(
            f"{variable} is not a database URL. Accepted examples: {_URL_EXAMPLES}"
        ) from None
    backend_name, _, driver = url.drivername.partition("+")
    backend = _BACKEND_ALIASES.get(backend_name)
    if backend is None:
        raise ConfigError(
            f"{variable} uses the unsupported scheme {url.drivername!r}. "
            f"Accepted examples: {_URL_EXAMPLES}"
        )
    async_driver = _ASYNC_DRIVERS[backend]
    if driver and f"{backend}+{driver}" != async_driver:
        raise ConfigError(
            f"{variable} names the driver {url.drivername!r}, which is not the async driver "
            f"this service uses. Write {async_driver}://... or simply {backend}://... "
            f"Accepted examples: {_URL_EXAMPLES}"
        )
    url = url.set(drivername=async_driver)
    if backend == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    if backend != "sqlite" and not url.database:
        raise ConfigError(f"{variable} names no database. Accepted examples: {_URL_EXAMPLES}")
    return url


class Settings(BaseSettings):
    """Every setting the service reads; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_file=(BACKEND_DIR.parent / ".env", BACKEND_DIR / ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,  # a refused URL must not echo its password
    )

    environment: Environment = Environment.DEVELOPMENT
    secret_key: SecretStr | None = None
    project_name: str = "Dualbase"
    # Requests with a larger body are refused with 413 before the body is read.
    max_body_size: int = Field(default=1024 * 1024, ge=1024)
    # Browser origins allowed to call the API (comma-separated); none by default.
    cors_origins: Annotated[list[str], NoDecode] = []

    database_url: SecretStr | None = None
    auth_database_url: SecretStr | None = None
    app_database_url: SecretStr | None = None
    data_dir: Path = BACKEND_DIR / "data"
    # More named databases (comma-separated), each configured by `<NAME>_DATABASE_*`.
    extra_databases: Annotated[list[str], NoDecode] = []
    # Every `<NAME>_DATABASE_*` variable, gathered by `_DatabaseVariables`.
    database_variables: dict[str, SecretStr] = Field(default_factory=dict, repr=False, exclude=True)
    # Read replicas of the two databases (comma-separated URLs), and how they are used.
    auth_database_replica_urls: Annotated[list[SecretStr], NoDecode] = []
    app_database_replica_urls: Annotated[list[SecretStr], NoDecode] = []
    replica_sticky_seconds: float = Field(default=2.0, ge=0)
    replica_max_lag_seconds: float = Field(default=5.0, gt=0)

    # Per worker: with WEB_CONCURRENCY workers, a server sees that many times these. The
    # defaults let three workers stay within PostgreSQL's default 100 connections.
    auth_db_pool_size: int = Field(default=5, ge=1)
    app_db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_echo: bool = False
    health_check_timeout: float = Field(default=3.0, gt=0)

    # The cache (README: "Cache"): "database" keeps it in the auth database, "redis" in
    # REDIS_URL, "memory" in each process (tests and scripts only: workers do not share it).
    cache_store: Literal["database", "redis", "memory"] = "database"
    # Starts every key, so that several services can share one store; `cache clear`
    # removes this prefix's keys only.
    cache_prefix: str = Field(default="dualbase", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")

    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "dualbase"
    jwt_audience: str = "dualbase-api"
    access_token_expire_minutes: int = Field(default=15, ge=1)
    refresh_token_expire_days: int = Field(default=14, ge=1)
    password_reset_expire_minutes: int = Field(default=30, ge=1)
    password_reset_url: str = "http://127.0.0.1:8000/reset-password?token={token}"
    api_key_prefix: str = Field(default="dbk_", pattern=r"^[a-z]{2,8}_$")
    # Each worker keeps verified principals in memory, kept exact by the change feed;
    # false checks every request against the auth database.
    principal_cache: bool = True

    login_max_failures_per_email: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window_minutes: int = Field(default=15, ge=1)
    # Reset requests per email and per client address in a window: more are answered 429,
    # whether or not the account exists.
    password_reset_max_per_email: int = Field(default=3, ge=1)
    password_reset_max_per_address: int = Field(default=10, ge=1)
    password_reset_window_minutes: int = Field(default=15, ge=1)

    # Where password-reset mail goes: "console" prints it (development), "smtp" sends it.
    mail_backend: Literal["console", "smtp"] = "console"
    mail_from: str = "Dualbase <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_timeout: float = Field(default=10.0, gt=0)

    # Background jobs (README: "Background jobs"). database: the jobs live in the auth
    # database, claimed with SKIP LOCKED (BEGIN IMMEDIATE on SQLite). redis, rabbitmq: ready
    # and running jobs live in the broker at QUEUE_URL; failed jobs, batches, workers and
    # delayed jobs stay in the auth database.
    queue_backend: Literal["database", "redis", "rabbitmq"] = "database"
    # The broker (unset: REDIS_URL for redis, amqp://guest:guest@127.0.0.1:5672/ for rabbitmq).
    queue_url: SecretStr | None = None
    # Starts the broker's key and queue names, so that several services share one broker.
    queue_prefix: str = Field(default="dualbase", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    # Jobs one worker process runs at once (`queue work --concurrency` overrides it).
    queue_concurrency: int = Field(default=10, ge=1, le=1000)
    # Seconds an idle worker waits before it looks for ready jobs again.
    queue_poll_interval: float = Field(default=1.0, gt=0)
    # Workers record a heartbeat this often; a worker silent for the timeout is presumed
    # dead, and the jobs it held are made available again (their attempt stays counted).
    queue_heartbeat_interval: float = Field(default=5.0, gt=0)
    queue_heartbeat_timeout: float = Field(default=30.0, gt=0)
    # On SIGTERM a worker takes no new job and waits this long for the running ones.
    queue_shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    # Every worker relays outbox messages (jobs staged with app-database writes) this
    # often, if older than the delay: younger ones are relayed by their own request.
    outbox_relay_interval: float = Field(default=5.0, gt=0)
    outbox_relay_delay: float = Field(default=5.0, ge=0)
    # Receipts of relayed messages (their deduplication) are kept this many days.
    outbox_receipt_retention_days: int = Field(default=7, ge=1)
    # Notifications read more than this many days ago go at `notifications prune`
    # (README: "Notifications"); unread ones stay.
    notifications_retention_days: int = Field(default=30, ge=0)

    # Maintenance (README: "Maintenance that runs itself"). Login sessions and reset
    # tokens are removed this many days after they ended (expired, revoked or used).
    sessions_retention_days: int = Field(default=7, ge=0)
    # Failed jobs, and finished job batches, are removed after this many days.
    queue_failed_retention_days: int = Field(default=7, ge=1)
    # Every long-running `queue work` also runs the scheduler; false leaves it to a
    # `schedule run` process.
    schedule_in_worker: bool = True
    # Cron expressions replacing a task's own, by task name, or "off"; as JSON:
    # {"sessions.cleanup": "0 4 * * *", "cache.gc": "off"}.
    schedule_cron: dict[str, str] = Field(default_factory=dict)
    # The record of each task's occurrences (`scheduled_runs`) is kept this many days.
    schedule_run_retention_days: int = Field(default=30, ge=1)

    # The activity log (README: "The activity log"): `activity prune` keeps this many days.
    activity_retention_days: int = Field(default=365, ge=1)

    # Logs, metrics and traces (README: "Logs, metrics and traces").
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # auto: readable text when ENVIRONMENT=development, one JSON object per line otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    metrics_enabled: bool = True
    # Tracing is off unless this names an OTLP/HTTP collector (http://host:4318).
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "dualbase"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        assert isinstance(env_settings, EnvSettingsSource)
        assert isinstance(dotenv_settings, DotEnvSettingsSource)
        variables = _DatabaseVariables(settings_cls, dotenv_settings, env_settings)
        return init_settings, env_settings, dotenv_settings, variables, file_secret_settings

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator(
        "extra_databases", "auth_database_replica_urls", "app_database_replica_urls", mode="before"
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("extra_databases")
    @classmethod
    def _check_names(cls, names: list[str]) -> list[str]:
        names = [name.lower() for name in names]
        for name in names:
            if not _NAME.fullmatch(name) or name in (AUTH, APP):
                raise ConfigError(
                    f"EXTRA_DATABASES: {name!r} cannot name a database: use a lower-case "
                    "word (letters, digits, _), other than auth and app"
                )
        if len(set(names)) != len(names):
            raise ConfigError("EXTRA_DATABASES names a database twice")
        return names

    @field_validator("log_level", "log_format", "cache_store", "queue_backend", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("otel_exporter_otlp_endpoint", mode="before")
    @classmethod
    def _check_otlp_endpoint(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/") or None  # set but empty: tracing stays off
            if value is not None and not value.startswith(("http://", "https://")):
                raise ConfigError(
                    "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL "
                    "(the collector's OTLP/HTTP port, e.g. http://localhost:4318)"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "REDIS_URL must be a redis://, rediss:// or unix:// URL "
                "(e.g. redis://127.0.0.1:6379/0)"
            )
        return value

    @field_validator("queue_url", mode="before")
    @classmethod
    def _empty_queue_url(cls, value: object) -> object:
        # Set but empty (compose passes QUEUE_URL= when unset): the backend's default.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("queue_url")
    @classmethod
    def _check_queue_url(cls, value: SecretStr | None) -> SecretStr | None:
        schemes = ("redis://", "rediss://", "unix://", "amqp://", "amqps://")
        if value is not None and not value.get_secret_value().startswith(schemes):
            raise ConfigError(
                "QUEUE_URL must be a redis://, rediss:// or unix:// URL (QUEUE_BACKEND=redis) "
                "or an amqp:// or amqps:// URL (QUEUE_BACKEND=rabbitmq)"
            )
        return value

    @property
    def broker_url(self) -> str:
        """Where the broker of QUEUE_BACKEND=redis|rabbitmq is."""
        if self.queue_url is not None:
            return self.queue_url.get_secret_value()
        if self.queue_backend == "redis":
            return self.redis_url.get_secret_value()
        return DEFAULT_AMQP_URL

    @field_validator("data_dir")
    @classmethod
    def _anchor_data_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else BACKEND_DIR / value

    @model_validator(mode="after")
    def _check(self) -> "Settings":
        if self.environment is not Environment.DEVELOPMENT:
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if not key or key == DEVELOPMENT_SECRET_KEY:
                raise ConfigError(
                    f"SECRET_KEY must be set to a secret of your own when ENVIRONMENT="
                    f"{self.environment.value}; generate one with: "
                    "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )
            if len(key) < 32:
                raise ConfigError("SECRET_KEY must be at least 32 characters long")
        if self.queue_heartbeat_timeout < 2 * self.queue_heartbeat_interval:
            raise ConfigError(
                "QUEUE_HEARTBEAT_TIMEOUT must be at least twice QUEUE_HEARTBEAT_INTERVAL: "
                "a worker that misses one heartbeat is slow, not dead"
            )
        if self.queue_backend != "database":
            amqp = self.broker_url.startswith(("amqp://", "amqps://"))
            if amqp != (self.queue_backend == "rabbitmq"):
                raise ConfigError(
                    f"QUEUE_URL does not fit QUEUE_BACKEND={self.queue_backend}: redis takes "
                    "a redis:// URL, rabbitmq an amqp:// URL"
                )
        # Resolve now so a bad URL stops the start-up, not the first request.
        for name in self.database_names:
            self.database(name)
        return self

    @property
    def signing_key(self) -> str:
        return self.secret_key.get_secret_value() if self.secret_key else DEVELOPMENT_SECRET_KEY

    @property
    def database_mode(self) -> DatabaseMode:
        if self.auth_database_url and self.app_database_url:
            return DatabaseMode.SEPARATE
        if self.auth_database_url or self.app_database_url or self.database_url:
            shared = self.resolved_database_url("auth") == self.resolved_database_url("app")
            return DatabaseMode.SINGLE if shared else DatabaseMode.SEPARATE
        return DatabaseMode.EMBEDDED

    @property
    def database_names(self) -> list[str]:
        return [AUTH, APP, *self.extra_databases]

    def database(self, name: DatabaseName) -> DatabaseConfig:
        """The configuration of a named database; an unknown name says what to set."""
        if name not in self.database_names:
            raise ConfigError(
                f"the database {name!r} is used but not configured: add it to "
                f"EXTRA_DATABASES and set {name.upper()}_DATABASE_URL"
            )
        return self._configure(name)

    def resolved_database_url(self, database: DatabaseName) -> URL:
        """The database's own URL, else DATABASE_URL, else its embedded SQLite file."""
        return self.database(database).url

    def pool_size(self, database: DatabaseName) -> int:
        return self.database(database).pool_size

    def _configure(self, name: str) -> DatabaseConfig:
        if name in (AUTH, APP):
            own = self.auth_database_url if name == AUTH else self.app_database_url
            replicas = (
                self.auth_database_replica_urls if name == AUTH else self.app_database_replica_urls
            )
            return DatabaseConfig(
                name=name,
                url=self._url_of(name, own),
                pool_size=self.auth_db_pool_size if name == AUTH else self.app_db_pool_size,
                replica_urls=self._replica_urls(name, [url.get_secret_value() for url in replicas]),
            )
        prefix = f"{name}_database_"
        values = {
            key.removeprefix(prefix): secret.get_secret_value()
            for key, secret in self.database_variables.items()
            if key.startswith(prefix)
        }
        if "url" not in values:
            raise ConfigError(
                f"EXTRA_DATABASES names {name!r}, but {name.upper()}_DATABASE_URL is not set"
            )
        return DatabaseConfig(
            name=name,
            url=normalize_database_url(f"{name.upper()}_DATABASE_URL", values["url"]),
            pool_size=_positive_int(
                f"{name.upper()}_DATABASE_POOL_SIZE", values.get("pool_size", "5")
            ),
            read_only=_flag(f"{name.upper()}_DATABASE_READ_ONLY", values.get("read_only", "false")),
            replica_urls=self._replica_urls(
                name, [url for url in values.get("replica_urls", "").split(",") if url.strip()]
            ),
        )

    def _url_of(self, name: str, own: SecretStr | None) -> URL:
        if own is not None:
            return normalize_database_url(f"{name.upper()}_DATABASE_URL", own.get_secret_value())
        if self.database_url is not None:
            return normalize_database_url("DATABASE_URL", self.database_url.get_secret_value())
        return URL.create("sqlite+aiosqlite", database=str(self.data_dir / f"{name}.db"))

    @staticmethod
    def _replica_urls(name: str, raw: list[str]) -> tuple[URL, ...]:
        variable = f"{name.upper()}_DATABASE_REPLICA_URLS"
        urls = tuple(normalize_database_url(variable, url) for url in raw)
        # The lag check reads PostgreSQL's recovery state; MariaDB replicas are not
        # supported yet, and SQLite has none.
        if any(url.get_backend_name() != "postgresql" for url in urls):
            raise ConfigError(f"{variable}: read replicas are supported on PostgreSQL only")
        return urls


def _positive_int(variable: str, raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{variable} must be a whole number of at least 1")
    return int(raw)


def _flag(variable: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{variable} must be true or false")
