"""The database store: tables `cache` and `cache_locks` in the auth database.

Every call is one short statement on an autocommit connection (`Database.autocommit`):
the cache never holds a transaction open, and a write is a single upsert, so
concurrent writers neither race (no read-then-write) nor deadlock. Expired rows are
removed as the store writes, as Solid Cache does: every `gc_every` writes, a task in the
background deletes at most `gc_batch` expired rows of each table, by primary key.

On PostgreSQL a hit, the call a cache exists for, skips SQLAlchemy's execute: the same
SELECT, compiled once by SQLAlchemy, runs as asyncpg's prepared statement on a
connection of the pool (checked out, liveness-checked and returned as any other).
Execute costs some 65 us of a 230 us hit; without it a hit stays within 2x a Redis
hit (`python -m tools.bench.cache`).
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from asyncpg import InterfaceError
from sqlalchemy import CursorResult, Executable, Table, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from app.core.db.failures import is_outage
from app.core.db.registry import Database
from app.core.errors import DatabaseUnavailable
from app.essentials.cache.statements import (
    ENTRIES,
    LOCKS,
    Statements,
    delete_keys,
    expired_keys,
)
from app.essentials.cache.store import CacheUnavailable, NotACounter, expiry, now_ms

logger = logging.getLogger(__name__)

T = TypeVar("T")
_BATCH = 1000  # rows per statement of `gc` and `flush`
# MySQL's "truncated incorrect INTEGER value" and "BIGINT value is out of range".
_MYSQL_NOT_A_COUNTER = {1292, 1690}


class DatabaseStore:
    def __init__(
        self, database: Database[Any], prefix: str, *, gc_every: int = 50, gc_batch: int = 100
    ) -> None:
        self._database = database
        self.prefix = prefix
        self._prefix = f"{prefix}:"
        self._sql = Statements(database.engine.dialect.name)
        self._driver_get = self._sql.driver_sql(self._sql.get, database.engine.dialect)
        self._gc_every = gc_every
        self._gc_batch = gc_batch
        self._writes = 0
        self._sweeping: asyncio.Task[None] | None = None

    async def _run(
        self, statement: Executable, read: Callable[[CursorResult[Any]], T], **params: Any
    ) -> T:
        try:
            async with self._database.autocommit() as connection:
                return read(await connection.execute(statement, params or None))
        except DatabaseUnavailable as exc:  # as the cache's: callers may do without it
            raise CacheUnavailable(self._database.name) from exc

    async def get(self, key: str) -> str | None:
        if self._driver_get is not None:
            value: str | None = await self._fetch_value(
                self._driver_get, self._prefix + key, now_ms()
            )
            return value
        return await self._run(self._sql.get, _scalar, key=self._prefix + key, now=now_ms())

    async def _fetch_value(self, sql: str, *params: Any) -> Any:
        """`sql` through the driver (asyncpg's `fetchval`) on a pooled connection; a
        connection that fails is invalidated, as SQLAlchemy would, and the failure is
        the cache's."""
        try:
            async with self._database.autocommit() as connection:
                raw = await connection.get_raw_connection()
                try:
                    return await raw.driver_connection.fetchval(sql, *params)  # type: ignore[union-attr]
                except Exception as exc:
                    if is_outage(exc) or isinstance(exc, InterfaceError):
                        await connection.invalidate(exc)
                        raise DatabaseUnavailable(self._database.name) from exc
                    raise
        except DatabaseUnavailable as exc:
            raise CacheUnavailable(self._database.name) from exc

    async def many(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        stored = [self._prefix + key for key in keys]
        rows = await self._run(self._sql.many, _pairs, keys=stored, now=now_ms())
        return {key[len(self._prefix) :]: value for key, value in rows.items()}

    async def put(self, key: str, value: str, ttl_ms: int | None) -> None:
        await self._write(
            self._sql.put, _ignore, key=self._prefix + key, value=value, expires_at=expiry(ttl_ms)
        )

    async def add(self, key: str, value: str, ttl_ms: int | None) -> bool:
        return await self._write(
            self._sql.add,
            self._sql.claimed,
            key=self._prefix + key,
            value=value,
            expires_at=expiry(ttl_ms),
            now=now_ms(),
        )

    async def forget(self, key: str) -> bool:
        """Only a live value counts as forgotten; an expired row is left to the sweep."""
        return await self._write(self._sql.forget, _any_row, key=self._prefix + key, now=now_ms())

    async def increment(self, key: str, by: int, ttl_ms: int | None) -> int:
        try:
            return await self._write(
                self._sql.increment,
                self._sql.counted,
                key=self._prefix + key,
                by=by,
                expires_at=expiry(ttl_ms),
                now=now_ms(),
            )
        except DBAPIError as exc:
            if _not_a_counter(exc):
                raise NotACounter() from exc
            raise

    async def acquire_lock(self, name: str, owner: str, ttl_ms: int) -> bool:
        now = now_ms()
        return await self._write(
            self._sql.acquire,
            self._sql.claimed,
            key=self._prefix + name,
            owner=owner,
            expires_at=now + ttl_ms,
            now=now,
        )

    async def release_lock(self, name: str, owner: str) -> bool:
        return await self._run(self._sql.release, _any_row, key=self._prefix + name, owner=owner)

    async def force_release_lock(self, name: str) -> bool:
        return await self._run(self._sql.force_release, _any_row, key=self._prefix + name)

    async def flush(self) -> int:
        """This prefix's values, a batch at a time in key order (never one statement
        that would hold every row at once); other prefixes and the locks stay."""
        removed = 0
        page = select(ENTRIES.c.key).where(ENTRIES.c.key.startswith(self._prefix, autoescape=True))
        page = page.order_by(ENTRIES.c.key).limit(_BATCH)
        after: str | None = None
        while True:
            batch = page if after is None else page.where(ENTRIES.c.key > after)
            keys = await self._run(batch, _column)
            if not keys:
                return removed
            removed += await self._run(delete_keys(ENTRIES, keys), _rowcount)
            after = keys[-1]

    async def gc(self) -> int:
        """Every expired row of both tables (any prefix: expired is expired), in batches."""
        removed = 0
        for table in (ENTRIES, LOCKS):
            while (batch := await self._delete_expired(table, _BATCH)) > 0:
                removed += batch
                if batch < _BATCH:
                    break
        return removed

    async def _delete_expired(self, table: Table, limit: int) -> int:
        now = now_ms()
        statement = self._sql.delete_expired(table, now, limit)
        if statement is not None:
            return await self._run(statement, _rowcount)
        # MySQL: read the keys first (a plain read, no locks), then delete by primary
        # key those still expired: locks are taken in primary-key order, as writers do.
        keys = await self._run(expired_keys(table, now, limit), _column)
        if not keys:
            return 0
        return await self._run(delete_keys(table, keys, table.c.expires_at <= now), _rowcount)

    async def _write(
        self, statement: Executable, read: Callable[[CursorResult[Any]], T], **params: Any
    ) -> T:
        answer = await self._run(statement, read, **params)
        self._writes += 1
        if self._writes % self._gc_every == 0 and (self._sweeping is None or self._sweeping.done()):
            self._sweeping = asyncio.create_task(self._sweep())
        return answer

    async def _sweep(self) -> None:
        """Bounded work, in the background: at most `gc_batch` rows of each table."""
        try:
            for table in (ENTRIES, LOCKS):
                await self._delete_expired(table, self._gc_batch)
        except CacheUnavailable:
            logger.warning("cache expiry sweep skipped: the auth database is unavailable")
        except Exception:
            logger.exception("cache expiry sweep failed")

    async def settle(self) -> None:
        """Wait for the sweep in flight, if any."""
        if self._sweeping is not None:
            await self._sweeping

    async def close(self) -> None:
        await self.settle()


def _ignore(result: CursorResult[Any]) -> None:
    return None


def _any_row(result: CursorResult[Any]) -> bool:
    return result.rowcount > 0


def _rowcount(result: CursorResult[Any]) -> int:
    return result.rowcount


def _scalar(result: CursorResult[Any]) -> str | None:
    value: str | None = result.scalar()
    return value


def _pairs(result: CursorResult[Any]) -> dict[str, str]:
    return {row.key: row.value for row in result}


def _column(result: CursorResult[Any]) -> list[str]:
    return list(result.scalars())


def _not_a_counter(exc: DBAPIError) -> bool:
    """The counter statement refused the value: SQLite's NOT NULL (the guard's NULL),
    PostgreSQL's data exceptions (SQLSTATE class 22: not an integer, out of range),
    MySQL's "truncated incorrect INTEGER value" and "BIGINT value is out of range"."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith("22")
    code = next(iter(getattr(exc.orig, "args", ())), None)
    return code in _MYSQL_NOT_A_COUNTER
