"""The database store's SQL: each write is one statement, in each backend's own upsert.

PostgreSQL and SQLite: `INSERT ... ON CONFLICT (key) DO UPDATE`, whose assignments all
see the row as it was. MySQL/MariaDB: `INSERT ... ON DUPLICATE KEY UPDATE`, whose
assignments run left to right, so the expiry, which the others test, comes last. There
the statement reports through `LAST_INSERT_ID(expr)`: SQLAlchemy's MySQL dialect sets
CLIENT_FOUND_ROWS, under which a row left as it was counts 1, as an inserted row does
(and a replaced one 2), so the row count cannot tell "inserted" from "already there".

The statements are built once per backend with bound parameters (`:key`, `:now`...):
a call then costs SQLAlchemy a cache lookup, not a new statement to build and key.
"""

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    CursorResult,
    Delete,
    Executable,
    Insert,
    String,
    Table,
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from app.essentials.cache.models import CacheEntry, CacheLock

ENTRIES = cast(Table, CacheEntry.__table__)
LOCKS = cast(Table, CacheLock.__table__)
_UNSIGNED = 2**64
Change = Callable[[Any, Any], Any]  # (the column as it is, the value offered) -> new value


def live(table: Table, now: int | BindParameter[int]) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


class Statements:
    """The statements of one backend, and how to read their answers."""

    def __init__(self, dialect: str) -> None:
        self.mysql = dialect == "mysql"
        self._postgresql = dialect == "postgresql"
        self._insert = {"postgresql": postgresql.insert, "mysql": mysql.insert}.get(
            dialect, sqlite.insert
        )
        key: BindParameter[str] = bindparam("key")
        now = bindparam("now", type_=BigInteger)
        self.get = select(ENTRIES.c.value).where(ENTRIES.c.key == key, live(ENTRIES, now))
        self.many = select(ENTRIES.c.key, ENTRIES.c.value).where(
            ENTRIES.c.key.in_(bindparam("keys", expanding=True)), live(ENTRIES, now)
        )
        # `put`: key, value, expires_at. `add`: the same and now; `claimed` reads it.
        self.put = self._upsert(ENTRIES, ["value", "expires_at"], lambda _, new: new)
        self.add = self._claim(ENTRIES, ["value", "expires_at"])
        # Only a live value counts as forgotten; an expired row is left to the sweep.
        self.forget = delete(ENTRIES).where(ENTRIES.c.key == key, live(ENTRIES, now))
        self.increment = self._increment()  # key, by, expires_at, now; `counted` reads it
        self.acquire = self._claim(LOCKS, ["owner", "expires_at"])  # key, owner, expires_at, now
        self.release = delete(LOCKS).where(LOCKS.c.key == key, LOCKS.c.owner == bindparam("owner"))
        self.force_release = delete(LOCKS).where(LOCKS.c.key == key)

    def driver_sql(self, statement: ClauseElement, dialect: Dialect) -> str | None:
        """On PostgreSQL, `statement` as asyncpg's SQL (`$1, $2` in the order of its
        bound parameters, `key` then `now`), for `DatabaseStore.get`; else None."""
        if not self._postgresql:
            return None
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        assert compiled.positiontup == ["key", "now"], compiled.positiontup
        return str(compiled)

    def claimed(self, result: CursorResult[Any]) -> bool:
        if self.mysql:
            return result.lastrowid == 0
        return result.rowcount == 1

    def counted(self, result: CursorResult[Any]) -> int:
        if self.mysql:
            # LAST_INSERT_ID is unsigned: a negative total comes back as 2**64 + total.
            total = int(result.lastrowid)
            return total - _UNSIGNED if total >= _UNSIGNED // 2 else total
        return int(result.scalar_one())

    def _claim(self, table: Table, columns: list[str]) -> Insert:
        """Insert, or replace a row that has expired; a live row stays as it was."""
        expired = table.c.expires_at <= bindparam("now", type_=BigInteger)
        if not self.mysql:
            return self._upsert(table, columns, lambda _, new: new, where=expired)

        def change(old: Any, new: Any) -> Any:
            if old is not table.c.expires_at:
                return func.if_(expired, new, old)
            # Marks "left as it was" for `claimed`; an insert reports 0.
            return func.if_(expired, new, func.if_(func.last_insert_id(1), old, old))

        return self._upsert(table, columns, change)

    def _increment(self) -> Executable:
        """Add `:by` to the integer the value holds; an expired row starts again from 0.
        A value that is not an integer's digits becomes NULL, which the NOT NULL column
        refuses (SQLite would otherwise read "abc" as 0; the others refuse the cast)."""
        by = bindparam("by", type_=BigInteger)
        current = sql_cast(ENTRIES.c.value, BigInteger)
        is_integer = sql_cast(current, String) == ENTRIES.c.value
        expired = ENTRIES.c.expires_at <= bindparam("now", type_=BigInteger)

        def change(old: Any, new: Any) -> Any:
            if old is ENTRIES.c.expires_at:
                return case((expired, new), else_=old)
            added = case((is_integer, self._reported(current + by)), else_=null())
            return case((expired, new), else_=added)

        upsert = self._upsert(ENTRIES, ["value", "expires_at"], change, value=self._reported(by))
        return upsert if self.mysql else upsert.returning(ENTRIES.c.value)

    def _reported(self, total: Any) -> Any:
        """`total` as text; on MySQL also through LAST_INSERT_ID, cast back to signed."""
        if self.mysql:
            total = sql_cast(func.last_insert_id(total), BigInteger)
        return sql_cast(total, String)

    def _upsert(
        self, table: Table, columns: list[str], change: Change, where: Any = None, **values: Any
    ) -> Insert:
        """Insert the row (`:key` and a parameter per column, unless `values` says
        otherwise); when the key exists, set each column to `change(old, offered)`."""
        row = {name: bindparam(name, type_=table.c[name].type) for name in ["key", *columns]}
        insert: Any = self._insert(table).values({**row, **values})
        if self.mysql:
            return cast(
                Insert,
                insert.on_duplicate_key_update(
                    [(name, change(table.c[name], insert.inserted[name])) for name in columns]
                ),
            )
        return cast(
            Insert,
            insert.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={name: change(table.c[name], insert.excluded[name]) for name in columns},
                where=where,
            ),
        )

    def delete_expired(self, table: Table, now: int, limit: int) -> Delete | None:
        """At most `limit` expired rows, by primary key, in one statement; None on MySQL,
        which takes no LIMIT in an IN subquery (there: `expired_keys`, then `delete_keys`)."""
        if self.mysql:
            return None
        keys = select(table.c.key).where(table.c.expires_at <= now).limit(limit)
        if self._postgresql:
            keys = keys.with_for_update(skip_locked=True)  # rows being rewritten: next time
        return delete(table).where(table.c.key.in_(keys), table.c.expires_at <= now)


def expired_keys(table: Table, now: int, limit: int) -> Executable:
    return select(table.c.key).where(table.c.expires_at <= now).limit(limit)


def delete_keys(table: Table, keys: list[str], *also: ColumnElement[bool]) -> Delete:
    return delete(table).where(table.c.key.in_(keys), *also)
