"""The memory store: one process's dictionaries. For tests and scripts: workers do not
share it, so counters and locks count per process."""

import re
from collections.abc import Sequence

from app.essentials.cache.store import NotACounter, expiry, now_ms

_MAX = 2**63 - 1
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")  # what json.dumps writes for an int


class MemoryStore:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # key -> (value, expires_at in epoch ms or None)
        self._values: dict[str, tuple[str, int | None]] = {}
        self._locks: dict[str, tuple[str, int]] = {}  # name -> (owner, expires_at)

    def _live(self, key: str) -> str | None:
        found = self._values.get(key)
        if found is None:
            return None
        value, expires_at = found
        if expires_at is not None and expires_at <= now_ms():
            del self._values[key]
            return None
        return value

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def many(self, keys: Sequence[str]) -> dict[str, str]:
        return {key: value for key in keys if (value := self._live(key)) is not None}

    async def put(self, key: str, value: str, ttl_ms: int | None) -> None:
        self._values[key] = (value, expiry(ttl_ms))

    async def add(self, key: str, value: str, ttl_ms: int | None) -> bool:
        if self._live(key) is not None:
            return False
        self._values[key] = (value, expiry(ttl_ms))
        return True

    async def forget(self, key: str) -> bool:
        return self._live(key) is not None and self._values.pop(key) is not None

    async def flush(self) -> int:
        count = len(self._values)
        self._values.clear()
        return count

    async def increment(self, key: str, by: int, ttl_ms: int | None) -> int:
        current = self._live(key)
        if current is None:
            total, expires_at = by, expiry(ttl_ms)
        elif _INTEGER.fullmatch(current):
            total, expires_at = int(current) + by, self._values[key][1]
        else:
            raise NotACounter()
        if not -_MAX - 1 <= total <= _MAX:
            raise NotACounter()
        self._values[key] = (str(total), expires_at)
        return total

    async def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> bool:
        held = self._locks.get(name)
        if held is not None and held[1] > now_ms():
            return False
        self._locks[name] = (owner, now_ms() + ttl_ms)
        return True

    async def release_lock(self, name: str, owner: str) -> bool:
        held = self._locks.get(name)
        if held is None or held[0] != owner:
            return False
        del self._locks[name]
        return True

    async def force_release_lock(self, name: str) -> bool:
        return self._locks.pop(name, None) is not None

    async def gc(self) -> int:
        now = now_ms()
        values = [k for k, (_, at) in self._values.items() if at is not None and at <= now]
        locks = [name for name, (_, at) in self._locks.items() if at <= now]
        for key in values:
            del self._values[key]
        for name in locks:
            del self._locks[name]
        return len(values) + len(locks)

    async def close(self) -> None:
        self._values.clear()
        self._locks.clear()
