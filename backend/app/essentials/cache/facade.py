"""`Cache`, what the rest of the code uses, over whichever store `CACHE_STORE` chose.

Values are JSON, never pickle: a cache entry must not be able to run code. A value
comes back as JSON gives it back (a tuple as a list, dict keys as strings), on a hit
as on the miss that computed it. TTLs are seconds; None means "never expires".
"""

import asyncio
import hashlib
import json
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self

from app.core.background import cancel_and_wait
from app.essentials.cache.models import KEY_BYTES
from app.essentials.cache.store import LockUnavailable, Store

Compute = Callable[[], Awaitable[Any]]


class Cache:
    """Get, put, add, forget, many, flush, remember, counters and locks."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.prefix = store.prefix
        self._room = KEY_BYTES - len(self.prefix.encode()) - 1  # what `prefix:` leaves a key
        # Misses being computed in this process, by key: other callers wait for them.
        self._flights: dict[str, asyncio.Task[Any]] = {}

    async def get(self, key: str, default: Any = None) -> Any:
        raw = await self.store.get(self._key(key))
        return default if raw is None else json.loads(raw)

    async def many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The keys found, with their values; a missing or expired key is left out."""
        stored = {self._key(key): key for key in keys}
        found = await self.store.many(list(stored))
        return {stored[key]: json.loads(raw) for key, raw in found.items()}

    async def put(self, key: str, value: Any, ttl: float | None = None) -> None:
        await self.store.put(self._key(key), _encode(value), _ttl_ms(ttl))

    async def add(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store only if the key is absent or expired; whether it did."""
        return await self.store.add(self._key(key), _encode(value), _ttl_ms(ttl))

    async def forget(self, key: str) -> bool:
        return await self.store.forget(self._key(key))

    async def flush(self) -> int:
        """Remove every value under this cache's prefix (locks stay); how many."""
        return await self.store.flush()

    async def increment(self, key: str, by: int = 1, ttl: float | None = None) -> int:
        """Add `by` atomically and return the new value. An absent or expired key starts
        from 0 and expires after `ttl`; an existing one keeps its expiry. A value that is
        not an integer raises `NotACounter`."""
        return await self.store.increment(self._key(key), by, _ttl_ms(ttl))

    async def decrement(self, key: str, by: int = 1, ttl: float | None = None) -> int:
        return await self.increment(key, -by, ttl)

    async def remember(
        self, key: str, ttl: float | None, compute: Compute, *, lock_seconds: float = 10.0
    ) -> Any:
        """The cached value, or `compute()`'s, stored for `ttl` seconds.

        Many callers missing at once compute once: in this process they wait for the
        first one; across processes the first takes the store's lock, and the others,
        once they get it, find the value stored. A holder slower than `lock_seconds`
        is not waited for any longer.
        """
        stored, ttl_ms = self._key(key), _ttl_ms(ttl)
        raw = await self.store.get(stored)
        if raw is not None:
            return json.loads(raw)
        flight = self._flights.get(stored)
        if flight is None:
            lock = Lock(self.store, self._key(f"remember:{stored}"), lock_seconds)
            flight = asyncio.create_task(self._fill(stored, ttl_ms, compute, lock))
            self._flights[stored] = flight
            flight.add_done_callback(lambda done: self._landed(stored, done))
        # Shielded: one caller giving up (a client gone) must not cancel the others' value.
        return await asyncio.shield(flight)

    async def _fill(self, stored: str, ttl_ms: int | None, compute: Compute, lock: "Lock") -> Any:
        held = await lock.block(lock.seconds)
        try:
            if held:  # another process may have stored it between our miss and our lock
                raw = await self.store.get(stored)
                if raw is not None:
                    return json.loads(raw)
            encoded = _encode(await compute())
            await self.store.put(stored, encoded, ttl_ms)
            return json.loads(encoded)
        finally:
            if held:
                await lock.release()

    def _landed(self, stored: str, flight: asyncio.Future[Any]) -> None:
        self._flights.pop(stored, None)
        if not flight.cancelled():
            flight.exception()  # seen, even when every caller had given up waiting

    def lock(self, name: str, seconds: float, owner: str | None = None) -> "Lock":
        """A lock held for at most `seconds`. Pass the `owner` of a lock taken elsewhere
        (another request, a job) to release it from here."""
        return Lock(self.store, self._key(name), seconds, owner)

    async def gc(self) -> int:
        """Remove every expired value and lock now (stores also expire as they go)."""
        return await self.store.gc()

    async def close(self) -> None:
        await cancel_and_wait(list(self._flights.values()))
        await self.store.close()

    def _key(self, key: str) -> str:
        """`key`, or its SHA-256 form when it is too long for the key column, or holds
        what text columns refuse (NUL, unpaired surrogates)."""
        try:
            size = len(key.encode())
        except UnicodeEncodeError:
            size = KEY_BYTES + 1
        if size <= self._room and "\x00" not in key:
            return key
        return "sha256:" + hashlib.sha256(key.encode(errors="surrogatepass")).hexdigest()


class Lock:
    """A lock with an owner token: only its owner releases it, and it expires on its own.

    `async with cache.lock("report", 60):` takes it or raises `LockUnavailable`, and
    releases it at the end of the block.
    """

    def __init__(self, store: Store, name: str, seconds: float, owner: str | None = None) -> None:
        if owner is not None and not 0 < len(owner) <= 64:
            raise ValueError("a lock owner is 1 to 64 characters")
        self.name = name
        self.seconds = seconds
        self.owner = owner or secrets.token_urlsafe(24)
        self._store = store
        self._ttl_ms = _positive_ms(seconds)

    async def acquire(self) -> bool:
        """Take the lock if it is free or expired; whether it did."""
        return await self._store.acquire_lock(self.name, self.owner, self._ttl_ms)

    async def block(self, wait_seconds: float, *, interval: float = 0.05) -> bool:
        """Try until the lock is taken, sleeping `interval` between tries; False after
        `wait_seconds`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not await self.acquire():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
        return True

    async def release(self) -> bool:
        """Free the lock if this owner holds it; whether it did."""
        return await self._store.release_lock(self.name, self.owner)

    async def force_release(self) -> bool:
        """Free the lock whoever holds it."""
        return await self._store.force_release_lock(self.name)

    async def __aenter__(self) -> Self:
        if not await self.acquire():
            raise LockUnavailable(self.name)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()


def _encode(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:  # ValueError: NaN, infinities, circular references
        raise TypeError(f"cache values must be JSON: {exc}") from None


def _ttl_ms(ttl: float | None) -> int | None:
    return None if ttl is None else _positive_ms(ttl)


def _positive_ms(seconds: float) -> int:
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError("a TTL is a positive number of seconds (None: no expiry)")
    return max(1, math.ceil(seconds * 1000))
