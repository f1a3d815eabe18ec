"""The Redis store (redis-py's asyncio client): values under `PREFIX:cache:`, locks under
`PREFIX:lock:`. Redis expires keys itself, so there is nothing to collect.

`client` is open for other uses of the same server (pub/sub, for instance).
"""

from collections.abc import Awaitable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.essentials.cache.store import CacheUnavailable, NotACounter

# Delete the lock only if it still holds this owner's token, in one atomic step.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
_SCAN_BATCH = 1000


class RedisStore:
    def __init__(self, client: "Redis", prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._values = f"{prefix}:cache:"
        self._locks = f"{prefix}:lock:"
        self._release = client.register_script(_RELEASE)

    async def get(self, key: str) -> str | None:
        value: str | None = await _call(self.client.get(self._values + key))
        return value

    async def many(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        values: list[str | None] = await _call(
            self.client.mget([self._values + key for key in keys])
        )
        return {key: value for key, value in zip(keys, values, strict=True) if value is not None}

    async def put(self, key: str, value: str, ttl_ms: int | None) -> None:
        await _call(self.client.set(self._values + key, value, px=ttl_ms))

    async def add(self, key: str, value: str, ttl_ms: int | None) -> bool:
        return bool(await _call(self.client.set(self._values + key, value, px=ttl_ms, nx=True)))

    async def forget(self, key: str) -> bool:
        return bool(await _call(self.client.unlink(self._values + key)))

    async def flush(self) -> int:
        """SCAN and UNLINK this prefix's values: never FLUSHDB, which would take other
        services' keys (and this one's locks) with them."""
        removed: int = await _call(self._unlink_matching(f"{self._values}*"))
        return removed

    async def _unlink_matching(self, pattern: str) -> int:
        removed, batch = 0, []
        async for key in self.client.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(key)
            if len(batch) == _SCAN_BATCH:
                removed += await self.client.unlink(*batch)
                batch = []
        if batch:
            removed += await self.client.unlink(*batch)
        return removed

    async def increment(self, key: str, by: int, ttl_ms: int | None) -> int:
        stored = self._values + key
        async with self.client.pipeline(transaction=True) as pipe:  # MULTI ... EXEC
            if ttl_ms is not None:  # an absent key starts at 0 with the TTL, a live one keeps its
                pipe.set(stored, "0", px=ttl_ms, nx=True)
            pipe.incrby(stored, by)
            try:
                results = await _call(pipe.execute())
            except ResponseError as exc:  # not an integer, or out of 64 bits
                raise NotACounter() from exc
        return int(results[-1])

    async def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> bool:
        return bool(await _call(self.client.set(self._locks + name, owner, px=ttl_ms, nx=True)))

    async def release_lock(self, name: str, owner: str) -> bool:
        return bool(await _call(self._release(keys=[self._locks + name], args=[owner])))

    async def force_release_lock(self, name: str) -> bool:
        return bool(await _call(self.client.unlink(self._locks + name)))

    async def gc(self) -> int:
        return 0

    async def close(self) -> None:
        await self.client.aclose()


async def _call(pending: Awaitable[Any]) -> Any:
    """A Redis call; a server that cannot be reached is a 503 (`CacheUnavailable`)."""
    try:
        return await pending
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise CacheUnavailable("redis") from exc
