"""What the database store promises beyond the contract, on SQLite, PostgreSQL and
MariaDB: one statement per write, expiry stored exactly, expired rows swept away with
bounded work per write, and writes and sweeps that never trip over each other."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, func, select
from tools.servers import free_port

from app.core.db.registry import create_databases
from app.essentials.cache.database import DatabaseStore
from app.essentials.cache.models import CacheEntry, CacheLock
from app.essentials.cache.store import CacheUnavailable, now_ms
from tests.caches import Target, open_target
from tests.conftest import SELECTED, unique_prefix


@pytest.fixture(scope="session", params=SELECTED)
async def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    async with open_target(request.param, tmp_path_factory, "dualbase_cache_db") as opened:
        yield opened


async def rows(target: Target, model: Any, prefix: str, *, expired: bool) -> int:
    """How many rows of `model` under `prefix` have (or have not) expired."""
    now = now_ms()
    live = model.expires_at.is_(None) | (model.expires_at > now)
    when = model.expires_at <= now if expired else live
    async with target.databases.auth.engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).where(model.key.startswith(f"{prefix}:"), when)
        )
    return int(count or 0)


async def statements_of(target: Target, call: Callable[[], Awaitable[Any]]) -> list[str]:
    """The SQL statements `call` sent: through SQLAlchemy, and on PostgreSQL also those
    sent straight through asyncpg (the store's hit path), which asyncpg's query logger
    sees (and SQLAlchemy's own prepared statements it does not)."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    def log(query: Any) -> None:
        if query.query.rstrip(";") not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            sent.append(query.query)

    def watch(dbapi_connection: Any, *args: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(log)

    def unwatch(dbapi_connection: Any, *args: Any) -> None:
        dbapi_connection.driver_connection.remove_query_logger(log)

    engine = target.databases.auth.engine.sync_engine
    pool_events = [("checkout", watch), ("checkin", unwatch)] if target.name == "postgresql" else []
    event.listen(engine, "before_cursor_execute", record)
    for name, listener in pool_events:
        event.listen(engine, name, listener)
    try:
        await call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
        for name, listener in pool_events:
            event.remove(engine, name, listener)
    return sent


async def test_each_read_and_write_is_one_statement(target: Target) -> None:
    cache = target.cache(gc_every=10**9)  # no sweep in between
    lock = cache.lock("job", 60)
    await cache.get("warm-up")
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("put", lambda: cache.put("k", {"v": 1}, ttl=60)),
        ("put again", lambda: cache.put("k", {"v": 2})),
        ("add absent", lambda: cache.add("a", 1)),
        ("add present", lambda: cache.add("a", 2)),
        ("increment new", lambda: cache.increment("n", ttl=60)),
        ("increment", lambda: cache.increment("n", 5)),
        ("decrement", lambda: cache.decrement("n")),
        ("get", lambda: cache.get("k")),
        ("many", lambda: cache.many(["k", "a", "n"])),
        ("forget", lambda: cache.forget("k")),
        ("acquire", lock.acquire),
        ("acquire taken", cache.lock("job", 60).acquire),
        ("release", lock.release),
        ("force release", lock.force_release),
    ]
    for name, call in calls:
        sent = await statements_of(target, call)
        assert len(sent) == 1, (name, sent)
    assert await cache.get("n") == 5
    await cache.close()


async def test_expiry_is_stored_as_epoch_milliseconds(target: Target) -> None:
    cache = target.cache()
    before = now_ms()
    await cache.put("timed", 1, ttl=60)
    await cache.put("forever", 1)

    async with target.databases.auth.engine.connect() as connection:
        stored = dict(
            (
                await connection.execute(
                    select(CacheEntry.key, CacheEntry.expires_at).where(
                        CacheEntry.key.startswith(f"{cache.prefix}:")
                    )
                )
            ).all()
        )
    timed = stored[f"{cache.prefix}:timed"]
    assert timed is not None
    assert before + 60_000 <= timed <= now_ms() + 60_000
    assert stored[f"{cache.prefix}:forever"] is None
    await cache.close()


async def test_writes_sweep_expired_rows_a_bounded_batch_at_a_time(target: Target) -> None:
    cache = target.cache(gc_every=10, gc_batch=5)
    store = cache.store
    assert isinstance(store, DatabaseStore)
    seeder = target.cache(cache.prefix, gc_every=10**9)  # another worker, never sweeping
    await asyncio.gather(*(seeder.put(f"old{number}", number, ttl=0.2) for number in range(20)))
    await asyncio.sleep(0.3)
    for number in range(9):  # writes 1-9: no sweep
        await cache.put(f"new{number}", number)
    await store.settle()
    assert await rows(target, CacheEntry, cache.prefix, expired=True) == 20

    await cache.put("new9", 9)  # write 10: one sweep, at most 5 rows
    await store.settle()
    assert await rows(target, CacheEntry, cache.prefix, expired=True) == 15

    for number in range(10, 19):  # writes 11-19: no sweep
        await cache.put(f"new{number}", number)
    await store.settle()
    assert await rows(target, CacheEntry, cache.prefix, expired=True) == 15

    await cache.increment("counter")  # write 20: the next sweep, 5 more
    await store.settle()
    assert await rows(target, CacheEntry, cache.prefix, expired=True) == 10
    assert await rows(target, CacheEntry, cache.prefix, expired=False) == 20
    await cache.close()
    await seeder.close()


async def test_gc_removes_every_expired_value_and_lock(target: Target) -> None:
    cache = target.cache(gc_every=10**9)
    await asyncio.gather(*(cache.put(f"old{n}", n, ttl=0.1) for n in range(30)))
    await cache.put("live", 1, ttl=60)
    assert await cache.lock("abandoned", 0.1).acquire()
    assert await cache.lock("held", 60).acquire()
    await asyncio.sleep(0.2)

    assert await cache.gc() >= 31  # other tests' expired rows go too: expired is expired

    assert await rows(target, CacheEntry, cache.prefix, expired=True) == 0
    assert await rows(target, CacheLock, cache.prefix, expired=True) == 0
    assert await cache.get("live") == 1
    assert not await cache.lock("held", 60).acquire()
    await cache.close()


async def test_writes_and_sweeps_at_once_never_fail(target: Target) -> None:
    """Upserts, counters, locks and expiry sweeps on the same few keys, all at once: no
    deadlock, no lost increment."""
    cache = target.cache(gc_every=3, gc_batch=50)
    keys = [f"hot{number}" for number in range(5)]

    async def churn(number: int) -> None:
        key = keys[number % len(keys)]
        await cache.put(key, number, ttl=0.01)
        await cache.add(f"{key}:add", number, ttl=0.01)
        await cache.increment("total")
        lock = cache.lock(key, 0.01)
        if await lock.acquire():
            await lock.release()

    for _ in range(4):
        await asyncio.gather(*(churn(number) for number in range(50)))
        await asyncio.sleep(0.02)

    assert await cache.get("total") == 200
    await cache.close()


async def test_a_database_out_of_reach_is_the_caches_outage(target: Target) -> None:
    """Reads and writes on a database that does not answer raise `CacheUnavailable`
    (which the catalogue and the rate limits handle), not a driver's error: PostgreSQL's
    hits, which go through asyncpg itself, included."""
    if target.name == "sqlite":
        pytest.skip("an embedded SQLite file has no server to lose")
    url = target.settings.resolved_database_url("auth").set(host="127.0.0.1", port=free_port())
    settings = target.settings.model_copy(
        update={"database_url": SecretStr(url.render_as_string(hide_password=False))}
    )
    databases = create_databases(settings)
    try:
        store = DatabaseStore(databases.auth, unique_prefix())
        with pytest.raises(CacheUnavailable):
            await store.get("k")
        with pytest.raises(CacheUnavailable):
            await store.put("k", "1", None)
    finally:
        await databases.dispose()
