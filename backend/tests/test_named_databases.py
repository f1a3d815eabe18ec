"""More databases by name: configured by environment only, read through a dependency,
read-only enforced by the database itself, and a name nobody configured stopping the
start-up."""

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import ValidationError
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import ConfigError, Settings
from app.core.db.reads import Reads, database_reads
from app.core.db.registry import create_databases
from app.core.db.sessions import database_session
from app.main import create_app
from tests.conftest import Backend, client_for, make_settings, running, url_string
from tests.test_metrics import scrape, value

# A table of someone else's database, which this service only reads.
legacy_metadata = MetaData()
customers = Table(
    "customers",
    legacy_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
)

LegacyDb = Annotated[AsyncSession, Depends(database_session("legacy"), scope="function")]
LegacyReads = Annotated[Reads, Depends(database_reads("legacy"))]
router = APIRouter(prefix="/legacy")
reads_router = APIRouter(prefix="/legacy")


@reads_router.get("/customer-rows")
async def customer_rows(*, reads: LegacyReads) -> list[str]:
    return [row.name for row in await reads.all(select(customers.c.name).order_by(customers.c.id))]


@router.get("/customers")
async def list_customers(*, legacy_db: LegacyDb) -> list[str]:
    return list(await legacy_db.scalars(select(customers.c.name).order_by(customers.c.id)))


@router.post("/customers", status_code=201)
async def add_customer(*, name: str, legacy_db: LegacyDb) -> None:
    await legacy_db.execute(insert(customers).values(name=name))


@pytest.fixture
async def legacy_url(backend: Backend) -> URL:
    """A database of its own with two customers, made writable by the test only."""
    url = await backend.create_database("dualbase_test_legacy")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(legacy_metadata.drop_all)
            await connection.run_sync(legacy_metadata.create_all)
            await connection.execute(insert(customers), [{"name": "Ada"}, {"name": "Bob"}])
    finally:
        await engine.dispose()
    return url


async def customer_count(url: URL) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(customers)) or 0)
    finally:
        await engine.dispose()


@pytest.fixture
async def legacy_app(
    settings: Settings, legacy_url: URL, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The service with a read-only `legacy` database, configured by the environment only."""
    monkeypatch.setenv("EXTRA_DATABASES", "legacy")
    monkeypatch.setenv("LEGACY_DATABASE_URL", url_string(legacy_url))
    monkeypatch.setenv("LEGACY_DATABASE_READ_ONLY", "true")
    monkeypatch.setenv("LEGACY_DATABASE_POOL_SIZE", "3")
    configured = make_settings(
        auth_database_url=url_string(settings.resolved_database_url("auth")),
        app_database_url=url_string(settings.resolved_database_url("app")),
    )
    app = create_app(configured)
    app.include_router(router)
    app.include_router(reads_router)
    async with running(app) as started, client_for(started) as http:
        yield started, http


async def test_an_extra_database_is_configured_by_environment_only(
    legacy_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, http = legacy_app

    settings: Settings = app.state.settings
    assert settings.extra_databases == ["legacy"]
    assert settings.database("legacy").read_only is True
    assert settings.database("legacy").pool_size == 3
    assert list(app.state.databases) == ["auth", "app", "legacy"]
    assert (await http.get("/legacy/customers")).json() == ["Ada", "Bob"]
    assert (await http.get("/legacy/customer-rows")).json() == ["Ada", "Bob"]


async def test_a_write_to_a_read_only_database_is_refused_and_nothing_is_written(
    legacy_app: tuple[FastAPI, httpx.AsyncClient], legacy_url: URL
) -> None:
    app, http = legacy_app

    response = await http.post("/legacy/customers", params={"name": "Eve"})

    assert response.status_code == 403
    assert response.json() == {
        "detail": "The legacy database is read-only",
        "code": "database_read_only",
        "database": "legacy",
    }
    # Refused by the database itself, not by the code: a statement on a connection of
    # the registry's engine, outside any request, is refused too.
    async with app.state.databases["legacy"].engine.connect() as connection:
        with pytest.raises(Exception, match=r"(?i)read.?only"):
            await connection.execute(insert(customers).values(name="Mallory"))
    assert await customer_count(legacy_url) == 2


async def test_health_and_metrics_cover_the_extra_database(
    legacy_app: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, http = legacy_app

    ready = await http.get("/health/ready")
    samples = await scrape(http)

    assert ready.status_code == 200
    assert ready.json()["databases"]["legacy"]["status"] == "up"
    assert value(samples, "db_pool_size", database="legacy") == 3


@pytest.mark.parametrize("used_by", [router, reads_router], ids=["session", "reads"])
async def test_a_database_used_in_code_but_not_configured_stops_the_start_up(
    settings: Settings, used_by: APIRouter
) -> None:
    app = create_app(settings)
    app.include_router(used_by)

    with pytest.raises(ConfigError, match="LEGACY_DATABASE_URL") as refused:
        async with running(app):
            pass

    assert "EXTRA_DATABASES" in str(refused.value)


def test_an_extra_database_without_a_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXTRA_DATABASES", "legacy,analytics")
    monkeypatch.setenv("LEGACY_DATABASE_URL", "postgresql://reader@localhost/legacy")

    with pytest.raises(ValidationError, match="ANALYTICS_DATABASE_URL is not set"):
        make_settings()


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("EXTRA_DATABASES", "auth", "other than auth and app"),
        ("EXTRA_DATABASES", "Legacy-DB", "cannot name a database"),
        ("LEGACY_DATABASE_READ_ONLY", "maybe", "must be true or false"),
        ("LEGACY_DATABASE_POOL_SIZE", "0", "at least 1"),
        ("LEGACY_DATABASE_URL", "oracle://x/y", "unsupported scheme"),
        ("LEGACY_DATABASE_REPLICA_URLS", "mysql://r@replica/legacy", "PostgreSQL only"),
    ],
)
def test_bad_settings_of_an_extra_database_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, message: str
) -> None:
    monkeypatch.setenv("EXTRA_DATABASES", "legacy")
    monkeypatch.setenv("LEGACY_DATABASE_URL", "postgresql://reader@localhost/legacy")
    monkeypatch.setenv(variable, raw)

    with pytest.raises(ValidationError, match=message):
        make_settings()


async def test_databases_at_one_url_share_one_engine_and_a_pool_sized_for_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXTRA_DATABASES", "reports,archive")
    monkeypatch.setenv("REPORTS_DATABASE_URL", "postgresql://u@localhost/main")
    monkeypatch.setenv("REPORTS_DATABASE_POOL_SIZE", "4")
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", "postgresql://u@localhost/main")
    monkeypatch.setenv("ARCHIVE_DATABASE_READ_ONLY", "true")
    settings = make_settings(database_url="postgresql://u@localhost/main")

    databases = create_databases(settings)  # engines connect lazily: no server needed
    try:
        assert databases["reports"].engine is databases.auth.engine
        assert databases.auth.engine.pool.size() == 5 + 20 + 4  # type: ignore[attr-defined]
        # Read-only is a property of the connections: a read-only database gets its own.
        assert databases["archive"].engine is not databases.auth.engine
        assert [name for name, _ in databases.distinct_engines()] == ["shared", "archive"]
    finally:
        await databases.dispose()
