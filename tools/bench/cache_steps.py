"""Run by bench/cache.py (from backend/): p50 and p99 of a cache hit and a put per store.

Each store is timed one call at a time (latency, not throughput) with a 1 KiB JSON
value, 100 keys in turn: 200 unmeasured calls, then 1,000 of each kind, three rounds
taking the stores in turn, so that a slow moment of the machine falls on all of them.
"""

import asyncio
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.config import Settings
from app.core.db.registry import Databases, create_databases
from app.essentials.cache.facade import Cache
from app.essentials.cache.factory import create_cache

ROUNDS, CALLS, WARM_UP = 3, 1000, 200
VALUE = {
    "items": [
        {"id": n, "sku": f"SKU-{n:04d}", "name": f"Product {n}", "price": "12.50", "stock": 10}
        for n in range(12)
    ]
}


def open_store(name: str, url: str) -> tuple[Cache, Databases]:
    prefix = f"bench-{secrets.token_hex(4)}"
    if name == "redis":
        settings = Settings(_env_file=None, cache_store="redis", redis_url=url, cache_prefix=prefix)
    else:
        settings = Settings(_env_file=None, database_url=url, cache_prefix=prefix)
    databases = create_databases(settings)
    return create_cache(settings, databases), databases


def putting(cache: Cache) -> Callable[[int], Awaitable[None]]:
    async def put(number: int) -> None:
        await cache.put(f"k{number % 100}", VALUE, ttl=600)

    return put


def getting(cache: Cache) -> Callable[[int], Awaitable[Any]]:
    async def get(number: int) -> Any:
        return await cache.get(f"k{number % 100}")

    return get


async def timed(call: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    """Microseconds of each of `count` calls."""
    samples = []
    for number in range(count):
        started = time.perf_counter()
        await call(number)
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def main() -> None:
    targets = dict(item.split("=", 1) for item in os.environ["BENCH_CACHE_TARGETS"].split(";"))
    opened = {name: open_store(name, url) for name, url in targets.items()}
    gets: dict[str, list[float]] = {name: [] for name in opened}
    puts: dict[str, list[float]] = {name: [] for name in opened}
    for cache, _ in opened.values():
        await timed(putting(cache), WARM_UP)
        await timed(getting(cache), WARM_UP)
    for _ in range(ROUNDS):
        for name, (cache, _) in opened.items():
            puts[name] += await timed(putting(cache), CALLS)
            gets[name] += await timed(getting(cache), CALLS)
    for cache, databases in opened.values():
        await cache.flush()
        await cache.close()
        await databases.dispose()

    redis_hit = statistics.median(gets["redis"])
    print(f"\ncache: {ROUNDS * CALLS} hits and puts per store, one at a time, 1 KiB values (µs)")
    print("| store | hit p50 | hit p99 | put p50 | put p99 | hit p50 / Redis hit p50 |")
    print("|---|---|---|---|---|---|")
    for name in opened:
        hit, put = gets[name], puts[name]
        print(
            f"| {name if name == 'redis' else f'database ({name})'} "
            f"| {statistics.median(hit):.0f} | {percentile(hit, 99):.0f} "
            f"| {statistics.median(put):.0f} | {percentile(put, 99):.0f} "
            f"| {statistics.median(hit) / redis_hit:.2f} |"
        )


def percentile(samples: list[float], percent: int) -> float:
    return statistics.quantiles(samples, n=100)[percent - 1]


if __name__ == "__main__":
    asyncio.run(main())
