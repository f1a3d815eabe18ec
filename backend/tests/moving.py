"""What the copy and backup tests share: databases of their own, filled through the API,
read back row by row, and the CLI started as a process that can be killed."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import MetaData, func, insert, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app import models
from app.auth.changes import ChangeFollower
from app.core.config import Settings
from app.essentials.cache.models import CacheEntry
from app.essentials.notifications.sending import notify_staged
from app.main import create_app
from app.orders.notifications import OrderCancelled
from app.projects.models import Project
from tests.accounts import API, an_admin, bearer, login, signed_up
from tests.conftest import (
    Backend,
    cli_environment,
    client_for,
    make_settings,
    migrate,
    running,
    url_string,
)
from tests.processes import CliProcess
from tests.queue_support import run_app_jobs

Rows = dict[str, list[tuple[Any, ...]]]


async def migrated(backend: Backend, prefix: str, *, single: bool = False) -> Settings:
    """New databases on `backend` at the newest revision: two, or one holding both trees."""
    if single:
        shared = await backend.create_database(f"{prefix}_shared")
        await migrate("auth", shared)
        await migrate("app", shared)
        return make_settings(database_url=url_string(shared))
    auth_url = await backend.create_database(f"{prefix}_auth")
    app_url = await backend.create_database(f"{prefix}_app")
    await migrate("auth", auth_url)
    await migrate("app", app_url)
    return make_settings(
        auth_database_url=url_string(auth_url), app_database_url=url_string(app_url)
    )


async def filled(backend: Backend, prefix: str, *, single: bool = False) -> Settings:
    """New databases at the newest revision, filled through the API (`fill`)."""
    settings = await migrated(backend, prefix, single=single)
    async with serving_app(settings) as (app, client):
        await fill(client, app)
    return settings


@asynccontextmanager
async def serving_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(create_app(settings)) as app, client_for(app) as client:
        yield app, client


async def fill(client: httpx.AsyncClient, app: FastAPI) -> None:
    """Rows in every kind of table, made as users make them: accounts, sign-ins (and a
    failed one), an API key, a reset token, projects, products with prices, orders, the
    jobs they queued (run), and an outbox message not yet relayed."""
    boss = await an_admin(client, app)
    ada = await signed_up(client, "ada@example.com")
    bob = await signed_up(client, "bob@example.com")
    assert (await login(client, "ada@example.com", "a wrong password")).status_code == 401
    key = await client.post(
        f"{API}/auth/api-keys",
        json={"name": "ci", "scopes": ["projects:read"]},
        headers=ada.headers,
    )
    assert key.status_code == 201, key.text
    reset = await client.post(f"{API}/auth/password-reset/request", json={"email": bob.email})
    assert reset.status_code == 202, reset.text
    for owner, name, description in (
        (ada, "Café ☕ relaunch", 'pricing "table", \\ and a\nline break'),
        (ada, "Archive", None),
        (bob, "Bob's garden", "🌱"),
    ):
        made = await client.post(
            f"{API}/projects",
            json={"name": name, "description": description},
            headers=owner.headers,
        )
        assert made.status_code == 201, made.text
    products = []
    for sku, price in (("PEN", "1.50"), ("INK", "4.25"), ("DESK", "1999.99")):
        made = await client.post(
            f"{API}/products",
            json={"sku": sku, "name": f"Product {sku}", "price": price, "stock": 100},
            headers=boss.headers,
        )
        assert made.status_code == 201, made.text
        products.append(made.json()["id"])
    for buyer, lines in ((ada, [(0, 3), (1, 2)]), (ada, [(2, 1)]), (bob, [(0, 7)])):
        items = [{"product_id": products[index], "quantity": n} for index, n in lines]
        order = await client.post(f"{API}/orders", json={"items": items}, headers=buyer.headers)
        assert order.status_code == 201, order.text
    cancelled = await client.post(f"{API}/orders/{order.json()['id']}/cancel", headers=bob.headers)
    assert cancelled.status_code == 200, cancelled.text
    await run_app_jobs(app)  # the reset token is made by its job
    # As left by a process that died between the order's commit and the relay.
    async with app.state.databases.app.sessions() as app_db:
        again = OrderCancelled(order.json()["id"], Decimal(order.json()["total"]))
        await notify_staged(app.state.outbox, app_db, bob.id, again)
        await app_db.commit()
    # The last-use times of sessions and keys, which the credential follower writes every
    # 30 s: written now, so that nothing changes the databases while a test copies them.
    await ChangeFollower(app.state.databases.auth, app.state.principals).write_last_use()


# Keys that collations disagree on (case, accents, a trailing space, scripts): a PostgreSQL
# server with a locale's collation sorts them unlike MariaDB's binary keys and SQLite.
CACHE_KEYS = ("apple", "Banana", "banana", "_under", "Zebra", "été", "e\u0301te", "key ", "日本")


async def add_cache_entries(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(CacheEntry),
            [{"key": key, "value": f'"{key}"', "expires_at": None} for key in CACHE_KEYS],
        )


async def add_projects(engine: AsyncEngine, count: int, owner_id: int = 1) -> None:
    now = datetime.now(UTC)
    rows = [
        {"owner_id": owner_id, "name": f"bulk {n}", "created_at": now, "updated_at": now}
        for n in range(count)
    ]
    async with engine.begin() as connection:
        await connection.execute(insert(Project), rows)


@asynccontextmanager
async def engine_on(url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def rows_of(url: URL, metadata: MetaData) -> Rows:
    """Every row of every table of `metadata` as the models read it, sorted by primary key
    here rather than by the database, whose collation may sort text keys its own way."""
    rows: Rows = {}
    async with engine_on(url) as engine, engine.connect() as connection:
        for table in metadata.sorted_tables:
            positions = [list(table.columns).index(column) for column in table.primary_key]
            read = [tuple(row) for row in await connection.execute(select(table))]
            rows[table.name] = sorted(read, key=lambda row: [row[at] for at in positions])
    return rows


async def count(url: URL, table_name: str) -> int:
    async with engine_on(url) as engine, engine.connect() as connection:
        table = models.APP.tables[table_name]
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def tables_in(url: URL) -> set[str]:
    async with engine_on(url) as engine, engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


def start_cli(settings: Settings, log: Path, *arguments: str) -> CliProcess:
    """The CLI as a process of its own, running until it ends or is killed."""
    return CliProcess.start(arguments, cli_environment(settings), log)


async def signed_in_headers(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await login(client, email)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])
