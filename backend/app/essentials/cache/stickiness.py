"""Read-your-writes across workers: "this caller wrote a moment ago" kept in the cache.

The database routing (`app.core.db.routing`) sends a caller's reads to the primary for
REPLICA_STICKY_SECONDS after their request wrote; with several workers, the worker that
serves the next read must know, so the mark lives in the cache every worker shares.
"""

from app.essentials.cache.facade import Cache


class CacheStickiness:
    """`app.core.db.routing.Stickiness` on the cache: a key per caller, expiring with the
    sticky time."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def mark(self, caller: str, seconds: float) -> None:
        await self._cache.put(f"sticky:{caller}", True, ttl=seconds)

    async def is_sticky(self, caller: str) -> bool:
        return bool(await self._cache.get(f"sticky:{caller}", False))
