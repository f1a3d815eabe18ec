"""The cache's contract, on every store: memory, the database store on SQLite, PostgreSQL
and MariaDB, and Redis. What only the database store promises is in test_cache_database.py.
"""

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.config import BACKEND_DIR
from app.essentials.cache.facade import Cache
from app.essentials.cache.store import LockUnavailable, NotACounter
from tests.caches import STORES, Target, open_target


@pytest.fixture(scope="session", params=STORES)
async def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    async with open_target(request.param, tmp_path_factory) as opened:
        yield opened


@pytest.fixture
async def cache(target: Target) -> AsyncIterator[Cache]:
    opened = target.cache()
    yield opened
    await opened.close()


# --- values ------------------------------------------------------------------------------


async def test_put_get_forget_and_many(cache: Cache) -> None:
    value = {"name": "Mug", "price": "12.50", "tags": ["a", "é", "☕"], "n": 3, "ok": True}
    await cache.put("product:1", value)
    await cache.put("nothing", None)

    assert await cache.get("product:1") == value
    assert await cache.get("missing") is None
    assert await cache.get("missing", "fallback") == "fallback"
    assert await cache.many(["product:1", "nothing", "missing"]) == {
        "product:1": value,
        "nothing": None,  # a stored null is found; a missing key is left out
    }
    assert await cache.many([]) == {}

    await cache.put("product:1", [1, 2])
    assert await cache.get("product:1") == [1, 2]
    assert await cache.forget("product:1") is True
    assert await cache.forget("product:1") is False
    assert await cache.get("product:1") is None


async def test_add_stores_only_when_absent(cache: Cache) -> None:
    assert await cache.add("once", "first") is True
    assert await cache.add("once", "second") is False

    assert await cache.get("once") == "first"


async def test_prefixes_keep_services_apart(target: Target, cache: Cache) -> None:
    other = target.cache(f"{cache.prefix}-other")  # starts like the first prefix, too
    try:
        await cache.put("shared-name", "mine")
        await cache.put("only-mine", 1)
        await other.put("shared-name", "theirs")
        lock = other.lock("job", 60)
        assert await lock.acquire()

        assert await cache.get("shared-name") == "mine"
        assert await other.get("shared-name") == "theirs"
        assert await cache.flush() == 2

        assert await cache.get("shared-name") is None
        assert await other.get("shared-name") == "theirs"
        assert await other.flush() == 1
        assert not await other.lock("job", 60).acquire()  # a flush leaves locks alone
    finally:
        await other.close()


async def test_values_expire_after_their_ttl(cache: Cache) -> None:
    await cache.put("short", "soon gone", ttl=0.3)
    await cache.put("long", "stays", ttl=60)
    await cache.put("forever", "stays too")
    assert await cache.get("short") == "soon gone"

    await asyncio.sleep(0.4)

    assert await cache.get("short") is None
    assert await cache.many(["short", "long", "forever"]) == {
        "long": "stays",
        "forever": "stays too",
    }
    assert await cache.forget("short") is False
    assert await cache.add("short", "again") is True
    assert await cache.get("short") == "again"


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_a_ttl_must_be_a_positive_number_of_seconds(cache: Cache, ttl: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        await cache.put("key", 1, ttl=ttl)


async def test_keys_of_any_length_and_content_are_kept_apart(cache: Cache) -> None:
    long_a, long_b = "k" * 300 + "a", "k" * 300 + "b"  # alike in their first 255 bytes
    keys = [
        long_a,
        long_b,
        "é" * 200,  # 400 bytes of UTF-8
        "Key",
        "key",  # MySQL's usual collations would take these five for one key
        "key ",
        "nul\x00byte",
        "lone \ud800 surrogate",
        "",
    ]
    for number, key in enumerate(keys):
        await cache.put(key, number)

    assert [await cache.get(key) for key in keys] == list(range(len(keys)))
    assert await cache.many(keys) == {key: number for number, key in enumerate(keys)}
    assert await cache.add(long_a, "again") is False
    assert await cache.increment(long_b) == 2
    assert await cache.forget(long_a) is True
    assert await cache.get(long_b) == 2
    lock = cache.lock("L" * 1000, 10)
    assert await lock.acquire()
    assert await lock.release()


@pytest.mark.parametrize(
    "value", [object(), {1, 2}, b"bytes", float("nan"), {"deep": [float("inf")]}]
)
async def test_only_json_is_stored(cache: Cache, value: object) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await cache.put("key", value)
    with pytest.raises(TypeError, match="JSON"):
        await cache.add("key", value)

    assert await cache.get("key") is None


async def test_a_value_comes_back_as_json_gives_it_back(cache: Cache) -> None:
    async def compute() -> Any:
        return {1: (2, 3)}

    assert await cache.remember("shape", 60, compute) == {"1": [2, 3]}  # the miss, too
    assert await cache.get("shape") == {"1": [2, 3]}


# --- counters ----------------------------------------------------------------------------


async def test_increment_and_decrement(cache: Cache) -> None:
    assert await cache.increment("hits") == 1
    assert await cache.increment("hits", 5) == 6
    assert await cache.decrement("hits", 2) == 4
    assert await cache.decrement("below", 3) == -3
    assert await cache.increment("below", 1) == -2

    assert await cache.get("hits") == 4
    assert await cache.get("below") == -2
    await cache.put("set", 41)
    assert await cache.increment("set") == 42


async def test_a_counter_takes_its_ttl_when_created_and_keeps_it(cache: Cache) -> None:
    assert await cache.increment("window", ttl=0.5) == 1
    await asyncio.sleep(0.25)
    assert await cache.increment("window", ttl=60) == 2  # the window is not extended
    await asyncio.sleep(0.35)

    assert await cache.get("window") is None
    assert await cache.increment("window", ttl=60) == 1  # expired: starts again from 0


@pytest.mark.parametrize("value", ["text", 1.5, [1], 2**70])
async def test_only_an_integer_is_a_counter(cache: Cache, value: object) -> None:
    await cache.put("not-a-counter", value)

    with pytest.raises(NotACounter):
        await cache.increment("not-a-counter")
    assert await cache.get("not-a-counter") == value


async def test_concurrent_increments_of_one_key_are_exact(cache: Cache) -> None:
    totals = await asyncio.gather(*(cache.increment("contended", ttl=60) for _ in range(60)))

    assert sorted(totals) == list(range(1, 61))
    assert await cache.get("contended") == 60


async def test_concurrent_writes_of_one_key_all_succeed(cache: Cache) -> None:
    await asyncio.gather(*(cache.put("contended", number, ttl=60) for number in range(50)))
    added = await asyncio.gather(*(cache.add("first", number) for number in range(50)))

    assert 0 <= await cache.get("contended") < 50
    assert added.count(True) == 1
    assert await cache.get("first") == added.index(True)


async def test_flush_removes_any_number_of_values(cache: Cache) -> None:
    for start in range(0, 1200, 100):
        await asyncio.gather(*(cache.put(f"k{n}", n) for n in range(start, start + 100)))

    assert await cache.flush() == 1200
    assert await cache.many(["k0", "k600", "k1199"]) == {}
    assert await cache.flush() == 0


# --- locks -------------------------------------------------------------------------------


async def test_only_the_owner_releases_a_lock(cache: Cache) -> None:
    mine = cache.lock("report", 60)
    theirs = cache.lock("report", 60)
    assert mine.owner != theirs.owner

    assert await mine.acquire() is True
    assert await theirs.acquire() is False
    assert await mine.acquire() is False  # not re-entrant: a second take fails too
    assert await theirs.release() is False
    assert await mine.release() is True
    assert await mine.release() is False
    assert await theirs.acquire() is True


async def test_a_lock_is_released_by_its_owner_token_from_elsewhere(cache: Cache) -> None:
    taken = cache.lock("job", 60)
    assert await taken.acquire()

    restored = cache.lock("job", 60, owner=taken.owner)  # in another request, or a job

    assert await restored.release() is True
    assert await cache.lock("job", 60).acquire() is True


async def test_force_release_frees_a_lock_whoever_holds_it(cache: Cache) -> None:
    assert await cache.lock("stuck", 60).acquire()

    assert await cache.lock("stuck", 60).force_release() is True

    assert await cache.lock("stuck", 60).acquire() is True


async def test_an_expired_lock_lets_another_owner_in(cache: Cache) -> None:
    first = cache.lock("brief", 0.3)
    second = cache.lock("brief", 60)
    assert await first.acquire()
    assert not await second.acquire()

    await asyncio.sleep(0.4)

    assert await second.acquire() is True
    assert await first.release() is False  # its time is up: it cannot free the new holder's
    assert not await cache.lock("brief", 60).acquire()


async def test_block_waits_for_the_lock_or_gives_up(cache: Cache) -> None:
    assert await cache.lock("busy", 0.4).acquire()
    started = time.monotonic()

    assert await cache.lock("busy", 60).block(5) is True  # taken once the first expires
    assert 0.2 < time.monotonic() - started < 3

    started = time.monotonic()
    assert await cache.lock("busy", 60).block(0.3) is False
    assert 0.25 < time.monotonic() - started < 2


async def test_async_with_holds_the_lock_for_the_block(cache: Cache) -> None:
    async with cache.lock("section", 60) as held:
        assert not await cache.lock("section", 60).acquire()
        with pytest.raises(LockUnavailable):
            async with cache.lock("section", 60):
                pass  # never reached
        assert held.owner

    assert await cache.lock("section", 60).acquire() is True


# --- remember ----------------------------------------------------------------------------


def counting(value: Any, seconds: float = 0.2) -> tuple[list[int], Any]:
    """A slow computation of `value`, and the list that counts its runs."""
    runs: list[int] = []

    async def compute() -> Any:
        runs.append(1)
        await asyncio.sleep(seconds)
        return value

    return runs, compute


async def test_many_concurrent_misses_compute_once(cache: Cache) -> None:
    runs, compute = counting({"page": 1})

    values = await asyncio.gather(*(cache.remember("page", 60, compute) for _ in range(50)))

    assert values == [{"page": 1}] * 50
    assert len(runs) == 1
    assert await cache.remember("page", 60, compute) == {"page": 1}
    assert len(runs) == 1


async def test_misses_in_two_workers_compute_once(target: Target, cache: Cache) -> None:
    """Two caches on one store, as two workers have: the store's lock, then a re-check."""
    other = target.beside(cache)
    runs, compute = counting("shared", seconds=0.5)
    try:
        values = await asyncio.gather(
            *(worker.remember("k", 60, compute) for worker in (cache, other) for _ in range(10))
        )
    finally:
        await other.close()

    assert values == ["shared"] * 20
    assert len(runs) == 1


async def test_a_failed_computation_is_not_cached(cache: Cache) -> None:
    runs: list[int] = []

    async def fail() -> Any:
        runs.append(1)
        await asyncio.sleep(0.05)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(
        *(cache.remember("fragile", 60, fail) for _ in range(5)), return_exceptions=True
    )

    assert [type(result) for result in results] == [RuntimeError] * 5
    assert len(runs) == 1
    _, compute = counting("recovered", seconds=0)
    assert await cache.remember("fragile", 60, compute) == "recovered"


# --- two processes -----------------------------------------------------------------------


async def in_two_processes(target: Target, prefix: str, *arguments: str) -> list[Any]:
    """Run tests/cache_worker.py twice at once, started together; each one's JSON answer."""
    if not target.shared:
        pytest.skip("the memory store belongs to one process")
    start_at = str(time.time() + 4)  # time enough for both to import and connect
    command = [sys.executable, "-m", "tests.cache_worker", *arguments, start_at]
    environment = target.environment(prefix)
    done = await asyncio.gather(
        *(
            asyncio.to_thread(
                subprocess.run,
                command,
                cwd=BACKEND_DIR,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            for _ in range(2)
        )
    )
    for process in done:
        assert process.returncode == 0, process.stderr
    return [json.loads(process.stdout) for process in done]


async def test_two_processes_missing_at_once_compute_once(target: Target, cache: Cache) -> None:
    answers = await in_two_processes(target, cache.prefix, "remember", "report")

    values = [value for answer in answers for value in answer]
    assert len(values) == 20
    assert len({json.dumps(value) for value in values}) == 1  # one process's value for all
    assert await cache.get("report:computed") == 1


async def test_two_processes_racing_for_a_lock_one_wins(target: Target, cache: Cache) -> None:
    first, second = await in_two_processes(target, cache.prefix, "locks", "40")

    assert sorted(first + second) == sorted(f"race-{number}" for number in range(40))
    assert not set(first) & set(second)
