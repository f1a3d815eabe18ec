"""What a store does, and what every store shares: the clock and the errors.

Stores see keys the facade (`Cache`) has already made safe to store: short enough for
the database store's key column with the prefix in front, and valid UTF-8. Each store
puts its prefix in front itself and keeps locks apart from values its own way. Values
are JSON text; a TTL is in milliseconds, None meaning "never expires".
"""

import time
from collections.abc import Sequence
from typing import Protocol

from app.core.errors import Conflict, DatabaseUnavailable


def now_ms() -> int:
    """The wall clock in epoch milliseconds: expiry times are stored this way."""
    return time.time_ns() // 1_000_000


def expiry(ttl_ms: int | None) -> int | None:
    return None if ttl_ms is None else now_ms() + ttl_ms


class NotACounter(ValueError):
    """`increment` found a value that is not an integer (or would leave 64 bits)."""

    def __init__(self) -> None:
        super().__init__("the cached value is not an integer within 64 bits")


class CacheUnavailable(DatabaseUnavailable):
    """The cache's store cannot be reached: the auth database, or Redis (`"redis"`).

    A 503 names it as any outage does; code that can do without the cache (a
    read-through) catches this, and only this, to go on without it.
    """


class LockUnavailable(Conflict):
    """`async with cache.lock(...)` found the lock held by someone else."""

    code = "lock_unavailable"

    def __init__(self, name: str) -> None:
        super().__init__(f"The lock {name!r} is held by someone else")


class Store(Protocol):
    prefix: str  # starts each of its keys; stores that share a server keep to their own

    async def get(self, key: str) -> str | None: ...

    async def many(self, keys: Sequence[str]) -> dict[str, str]:
        """The keys found (and not expired), with their values."""
        ...

    async def put(self, key: str, value: str, ttl_ms: int | None) -> None: ...

    async def add(self, key: str, value: str, ttl_ms: int | None) -> bool:
        """Store only if the key is absent or expired; whether it did."""
        ...

    async def forget(self, key: str) -> bool: ...

    async def flush(self) -> int:
        """Remove every value under this store's prefix (never locks); how many."""
        ...

    async def increment(self, key: str, by: int, ttl_ms: int | None) -> int:
        """Add `by` atomically; an absent or expired key starts from 0 with `ttl_ms`."""
        ...

    async def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> bool:
        """Take the lock if it is free or expired; whether it did."""
        ...

    async def release_lock(self, name: str, owner: str) -> bool:
        """Free the lock if `owner` holds it; whether it did."""
        ...

    async def force_release_lock(self, name: str) -> bool: ...

    async def gc(self) -> int:
        """Remove every expired value and lock now; how many."""
        ...

    async def close(self) -> None: ...
