"""Fixed-window rate limits counted in the cache, as Laravel's RateLimiter counts them.

The first hit on a key opens its window: a counter that expires `window` seconds later
(the increment's TTL), beside a timer holding the window's end, from which `Retry-After`
is computed. With `CACHE_STORE=redis` or `database` every worker counts in one place.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from app.essentials.cache.facade import Cache
from app.essentials.cache.store import now_ms


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `max_attempts` per `window` seconds for `key`."""

    key: str
    max_attempts: int
    window: int

    @property
    def timer(self) -> str:
        return f"{self.key}:timer"


class RateLimiter:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def retry_after(self, limits: Sequence[Limit]) -> int | None:
        """Seconds until the first of `limits` that is used up frees again; None if none is."""
        found = await self._cache.many(key for limit in limits for key in (limit.key, limit.timer))
        for limit in limits:
            if found.get(limit.key, 0) >= limit.max_attempts:
                return _seconds_until(found.get(limit.timer), limit.window)
        return None

    async def hit(self, limit: Limit) -> int:
        """Count one attempt; the count in the window so far."""
        count = await self._cache.increment(limit.key, ttl=limit.window)
        if count == 1:  # a new window: remember when it ends
            await self._cache.put(limit.timer, now_ms() + limit.window * 1000, ttl=limit.window)
        return count

    async def attempt(self, limits: Sequence[Limit]) -> int | None:
        """Count an attempt against each limit (atomic increments, so exactly
        `max_attempts` get through however many race); seconds to wait if one is over."""
        for limit in limits:
            if await self.hit(limit) > limit.max_attempts:
                timer = await self._cache.get(limit.timer)
                return _seconds_until(timer, limit.window)
        return None

    async def clear(self, limit: Limit) -> None:
        await self._cache.forget(limit.key)
        await self._cache.forget(limit.timer)


def _seconds_until(ends_at: object, window: int) -> int:
    if not isinstance(ends_at, int):  # the timer is not written yet: a full window
        return window
    return max(1, math.ceil((ends_at - now_ms()) / 1000))
