"""The catalogue read through the cache: two workers sharing one store each see the
other's writes (and the stock orders take or put back) on their next read; a read
between a write and its commit caches nothing stale; without the cache, reads go on."""

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import update

from app.core.config import Settings
from app.core.db.sessions import transaction
from app.essentials.activity.recording import UNAUDITED
from app.main import create_app
from app.products import catalogue
from app.products.models import Product
from tests.accounts import API, Account, an_admin, signed_up
from tests.caches import on_redis
from tests.conftest import client_for, running, two_workers
from tests.test_products import new_product

PRODUCTS = f"{API}/products"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=["database", "redis"])
def shared(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The test databases' settings, with the cache in the auth database or in Redis."""
    if request.param == "database":
        return settings
    return on_redis(settings, request.getfixturevalue("redis_url"))  # only here: Redis


@pytest.fixture
async def workers(
    client: httpx.AsyncClient, shared: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI]]:
    """Two app instances (two workers) on the test databases, sharing one cache store.
    `client` empties the databases afterwards."""
    async with two_workers(shared) as started:
        yield started


async def read(worker: httpx.AsyncClient, reader: Account, product_id: int) -> dict[str, Any]:
    response = await worker.get(f"{PRODUCTS}/{product_id}", headers=reader.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed(worker: httpx.AsyncClient, reader: Account) -> list[dict[str, Any]]:
    response = await worker.get(PRODUCTS, headers=reader.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_write_on_one_worker_shows_on_the_others_next_read(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI],
) -> None:
    one, two, first = workers
    boss = await an_admin(one, first)
    ada = await signed_up(one, "ada@example.com")
    mug = await new_product(one, boss, "MUG-1", "12.50", 10, "Mug")
    assert await read(two, ada, mug["id"]) == mug  # now cached
    assert await listed(two, ada) == [mug]

    changed = await one.patch(
        f"{PRODUCTS}/{mug['id']}", json={"price": "9.99"}, headers=boss.headers
    )
    assert changed.status_code == 200, changed.text

    assert (await read(two, ada, mug["id"]))["price"] == "9.99"
    assert [item["price"] for item in await listed(two, ada)] == ["9.99"]
    cup = await new_product(one, boss, "CUP-1")
    assert [item["sku"] for item in await listed(two, ada)] == ["MUG-1", "CUP-1"]
    assert (await one.delete(f"{PRODUCTS}/{cup['id']}", headers=boss.headers)).status_code == 204
    gone = await two.get(f"{PRODUCTS}/{cup['id']}", headers=ada.headers)
    assert gone.status_code == 404
    assert [item["sku"] for item in await listed(two, ada)] == ["MUG-1"]


async def test_orders_change_the_stock_the_other_worker_shows(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient, FastAPI],
) -> None:
    one, two, first = workers
    boss = await an_admin(one, first)
    ada = await signed_up(one, "ada@example.com")
    mug = await new_product(one, boss, "MUG-1", stock=5)
    assert (await read(two, ada, mug["id"]))["stock"] == 5

    placed = await one.post(
        f"{API}/orders",
        json={"items": [{"product_id": mug["id"], "quantity": 2}]},
        headers=ada.headers,
    )
    assert placed.status_code == 201, placed.text
    assert (await read(two, ada, mug["id"]))["stock"] == 3
    assert [item["stock"] for item in await listed(two, ada)] == [3]

    cancelled = await one.post(f"{API}/orders/{placed.json()['id']}/cancel", headers=ada.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (await read(two, ada, mug["id"]))["stock"] == 5


async def test_reads_come_from_the_cache_until_a_write_invalidates_it(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A change made behind the service's back is not seen: the reads are cached."""
    boss = await an_admin(client, app)
    mug = await new_product(client, boss, "MUG-1", stock=5)
    assert (await read(client, boss, mug["id"]))["stock"] == 5
    async with app.state.databases.app.sessions() as session:
        await session.execute(update(Product).values(stock=99))
        await session.commit()

    assert (await read(client, boss, mug["id"]))["stock"] == 5

    await new_product(client, boss, "CUP-1")  # any write through the service
    assert (await read(client, boss, mug["id"]))["stock"] == 99


async def test_a_read_before_the_commit_does_not_cache_the_old_row_as_new(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The invalidation follows the commit: a reader that runs between the write and the
    commit sees (and caches) the old row, under the old version only."""
    boss = await an_admin(client, app)
    mug = await new_product(client, boss, "MUG-1", "12.50")

    async with transaction(app.state.databases, "app") as app_db:
        await app_db.execute(update(Product).values(price="1.00").execution_options(**UNAUDITED))
        catalogue.changed(app_db, app.state.cache)
        assert (await read(client, boss, mug["id"]))["price"] == "12.50"  # not committed yet

    assert (await read(client, boss, mug["id"]))["price"] == "1.00"


async def test_a_rolled_back_write_invalidates_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    boss = await an_admin(client, app)
    await new_product(client, boss, "MUG-1")
    version = await app.state.cache.get(catalogue.VERSION)

    refused = await client.post(
        PRODUCTS, json={"sku": "MUG-1", "name": "Again", "price": "1.00"}, headers=boss.headers
    )

    assert refused.status_code == 409
    assert await app.state.cache.get(catalogue.VERSION) == version


async def test_the_catalogue_is_read_from_the_database_while_the_cache_is_down(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    boss = await an_admin(client, app)
    mug = await new_product(client, boss, "MUG-1")
    nowhere = settings.model_copy(
        update={
            "cache_store": "redis",
            "redis_url": SecretStr(f"redis://127.0.0.1:{closed_port()}/0"),
        }
    )

    async with running(create_app(nowhere)) as cacheless, client_for(cacheless) as other:
        items, one = await asyncio.gather(listed(other, boss), read(other, boss, mug["id"]))
        signing_in = await other.post(
            f"{API}/auth/login", data={"username": boss.email, "password": boss.password}
        )

    assert items == [mug]
    assert one == mug
    # The lockout cannot count without its store: sign-in is refused, never left unguarded.
    assert signing_in.status_code == 503
    assert signing_in.json()["database"] == "redis"
