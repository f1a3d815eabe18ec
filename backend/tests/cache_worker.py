"""Another process on the cache, for the tests that race two processes. It reads its
store from the environment (CACHE_STORE, CACHE_PREFIX, DATABASE_URL, REDIS_URL), waits
for the wall-clock time START_AT, then prints its result as JSON:

    python -m tests.cache_worker remember KEY START_AT   # ten concurrent remember(KEY)
    python -m tests.cache_worker locks COUNT START_AT    # the locks race-0... it won
"""

import asyncio
import json
import os
import sys
import time
from typing import Any

from app.core.config import Settings
from app.core.db.registry import create_databases
from app.essentials.cache.facade import Cache
from app.essentials.cache.factory import create_cache


async def remember(cache: Cache, key: str) -> list[Any]:
    async def compute() -> dict[str, int]:
        await cache.increment(f"{key}:computed")  # how many processes computed, in all
        await asyncio.sleep(0.5)
        return {"pid": os.getpid()}

    return await asyncio.gather(*(cache.remember(key, 60, compute) for _ in range(10)))


async def locks(cache: Cache, count: int) -> list[str]:
    names = [f"race-{number}" for number in range(count)]
    return [name for name in names if await cache.lock(name, 60).acquire()]


async def main(action: str, argument: str, start_at: float) -> None:
    settings = Settings()
    databases = create_databases(settings)
    cache = create_cache(settings, databases)
    try:
        await cache.get("warm-up")  # connected before the start, so that both start at once
        await asyncio.sleep(max(0.0, start_at - time.time()))
        if action == "remember":
            print(json.dumps(await remember(cache, argument)))
        else:
            print(json.dumps(await locks(cache, int(argument))))
    finally:
        await cache.close()
        await databases.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
