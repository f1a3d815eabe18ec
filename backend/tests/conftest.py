"""One suite, three backends: every test that takes `backend` runs on each of them.

DUALBASE_TEST_BACKENDS picks them (default: sqlite,postgresql,mariadb). A server
that does not answer is skipped with a notice, except under CI=true, where it fails.
TEST_POSTGRES_URL and TEST_MYSQL_URL point at the servers (an admin account that
may create databases); each test run makes its own databases on them.
"""

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import models as registered_models  # noqa: F401  (all tables, for empty_tables)
from app.core.config import BACKEND_DIR, Settings, normalize_database_url
from app.core.db.base import AppBase, AuthBase
from app.main import create_app

# Fixtures of their own modules: the queue's `harness`, headless Chromium's `browser`.
pytest_plugins = ("tests.queue_support", "tests.browser")

SETTINGS_VARIABLES = (
    "DATABASE_URL",
    "AUTH_DATABASE_URL",
    "APP_DATABASE_URL",
    "ENVIRONMENT",
    "SECRET_KEY",
    "DATA_DIR",
)
IN_CI = os.environ.get("CI", "").lower() == "true"
SELECTED = [
    name.strip()
    for name in os.environ.get("DUALBASE_TEST_BACKENDS", "sqlite,postgresql,mariadb").split(",")
    if name.strip()
]
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"
# Database names carry the process id, so that two test runs never share a database.
RUN_ID = os.getpid()


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    """Tests state every setting they depend on; a developer's own .env must not leak in."""
    saved = {name: os.environ.pop(name) for name in SETTINGS_VARIABLES if name in os.environ}
    yield
    os.environ.update(saved)


def make_settings(**values: Any) -> Settings:
    values.setdefault("environment", "test")
    values.setdefault("secret_key", TEST_SECRET)
    return Settings(_env_file=None, **values)


@dataclass
class Backend:
    """A database server the suite runs on, able to make throw-away databases."""

    name: str
    admin_url: URL | None = None  # None: SQLite, where a database is a file
    workdir: Path = field(default_factory=Path)
    created: list[str] = field(default_factory=list)

    @property
    def is_sqlite(self) -> bool:
        return self.admin_url is None

    def url(self, database: str) -> URL:
        if self.admin_url is None:
            return URL.create("sqlite+aiosqlite", database=str(self.workdir / f"{database}.db"))
        return self.admin_url.set(database=database)

    @asynccontextmanager
    async def _admin(self) -> AsyncIterator[AsyncEngine]:
        assert self.admin_url is not None
        engine = create_async_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            yield engine
        finally:
            await engine.dispose()

    async def create_database(self, name: str) -> URL:
        """A new, empty database for this run (dropped again when the run ends)."""
        database = f"{name}_{RUN_ID}"
        await self.drop_database(database)
        self.created.append(database)
        if self.admin_url is None:
            return self.url(database)
        async with self._admin() as engine, engine.connect() as connection:
            if self.name == "postgresql":
                await connection.execute(text(f'CREATE DATABASE "{database}"'))
            else:
                await connection.execute(
                    text(
                        f"CREATE DATABASE `{database}` "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
        return self.url(database)

    async def drop_database(self, database: str) -> None:
        if self.admin_url is None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.workdir / database}.db{suffix}").unlink(missing_ok=True)
            return
        async with self._admin() as engine, engine.connect() as connection:
            if self.name == "postgresql":
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            else:
                await connection.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))

    async def table_names(self, url: URL) -> set[str]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()


async def _reachable(url: URL) -> str | None:
    engine = create_async_engine(
        url,
        connect_args=(
            {"timeout": 3} if url.get_backend_name() == "postgresql" else {"connect_timeout": 3}
        ),
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()
    return None


async def open_server(name: str, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """The backend `name`, ready to make databases; skipped (failed under CI) when its
    server does not answer."""
    if name == "sqlite":
        return Backend("sqlite", workdir=tmp_path_factory.mktemp("sqlite"))
    variable, default = {
        "postgresql": ("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        "mariadb": ("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql"),
    }[name]
    admin_url = normalize_database_url(variable, os.environ.get(variable, default))
    problem = await _reachable(admin_url)
    if problem is not None:
        unreachable(
            f"{name} is not reachable at {admin_url.host}:{admin_url.port} "
            f"({problem}); set {variable} or start the server"
        )
    return Backend(name, admin_url=admin_url)


def unreachable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session", params=SELECTED)
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    server = await open_server(request.param, tmp_path_factory)
    yield server
    if not server.is_sqlite:
        for database in server.created:
            await server.drop_database(database)


async def open_redis() -> str:
    """TEST_REDIS_URL (default redis://127.0.0.1:6379/0), once it answers; skipped (failed
    under CI) when it does not. Tests keep to keys of their own prefix (`unique_prefix`)
    there, so that runs in parallel do not meet."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except RedisError as exc:
        unreachable(f"Redis is not reachable at {url} ({exc}); set TEST_REDIS_URL or start it")
    finally:
        await client.aclose()
    return url


_prefixes = itertools.count()


def unique_prefix() -> str:
    """A cache prefix no other test and no other run uses: `t<pid>x<n>`."""
    return f"t{RUN_ID}x{next(_prefixes)}"


async def drop_test_keys(redis_url: str) -> None:
    """Remove what this run's tests left in Redis (values and locks of their prefixes)."""
    client = Redis.from_url(redis_url)
    async for key in client.scan_iter(match=f"t{RUN_ID}x*"):
        await client.unlink(key)
    await client.aclose()


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    url = await open_redis()
    yield url
    await drop_test_keys(url)


def alembic_config(database: str, url: URL) -> Config:
    config = Config(str(BACKEND_DIR / "alembic.ini"), ini_section=database)
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


async def migrate(database: str, url: URL, revision: str = "head") -> None:
    """`alembic -n <database> upgrade <revision>` (or downgrade, for "base")."""
    config = alembic_config(database, url)
    if revision == "base":
        await asyncio.to_thread(command.downgrade, config, "base")
    else:
        await asyncio.to_thread(command.upgrade, config, revision)


@pytest.fixture(scope="session")
async def settings(backend: Backend) -> Settings:
    """Two separate, migrated databases on the backend, shared by the API tests."""
    auth_url = await backend.create_database("dualbase_test_auth")
    app_url = await backend.create_database("dualbase_test_app")
    await migrate("auth", auth_url)
    await migrate("app", app_url)
    return make_settings(
        auth_database_url=url_string(auth_url), app_database_url=url_string(app_url)
    )


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered, as uvicorn would run it."""
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running(create_app(settings)) as started:
        yield started


@asynccontextmanager
async def two_workers(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI]]:
    """Two app instances on the same settings, as two uvicorn workers are: a client for
    each, and the first app."""
    async with (
        running(create_app(settings)) as first,
        running(create_app(settings)) as second,
        client_for(first) as one,
        client_for(second) as two,
    ):
        yield one, two, first


def client_for(app: FastAPI) -> httpx.AsyncClient:
    # Errors are asserted as the client sees them, so the app's exceptions are not
    # re-raised into the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http
    await empty_tables(app)


# Rows the migrations seed (the admin and member roles): kept between tests.
SEEDED_TABLES = {"roles", "permissions", "role_permissions"}


async def empty_tables(app: FastAPI) -> None:
    """Leave both databases as the migrations made them, for the next test."""
    databases = app.state.databases
    for database, base in ((databases.auth, AuthBase), (databases.app, AppBase)):
        async with database.engine.begin() as connection:
            for table in reversed(base.metadata.sorted_tables):
                if table.name not in SEEDED_TABLES:
                    await connection.execute(table.delete())
    # Rows deleted behind the service's back leave no change in the feed.
    app.state.principals.drop_user(None)


def url_string(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def cli_environment(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment of a command run against the test databases of `settings`, with
    `variables` more (CACHE_STORE="redis")."""
    environment = {
        name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES
    }
    return environment | {
        "AUTH_DATABASE_URL": url_string(settings.resolved_database_url("auth")),
        "APP_DATABASE_URL": url_string(settings.resolved_database_url("app")),
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET,
        **variables,
    }


async def run_cli(
    settings: Settings, *arguments: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`python -m app.cli ...` as an operator runs it, against the test databases, without
    a terminal to prompt on; `variables` are more of its environment."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", *arguments],
        cwd=BACKEND_DIR,
        env=cli_environment(settings, **variables),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,  # a copy of 20,000 rows on a loaded machine
        check=False,
    )
