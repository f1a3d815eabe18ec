"""The database store's SQL: each write is one statement, in each backend's own upsert.

PostgreSQL and SQLite: `INSERT ... ON CONFLICT (key) DO UPDATE`, whose assignments all
see the row as it was. MySQL/MariaDB: `INSERT ... ON DUPLICATE KEY UPDATE`, whose
assignments run left to right, so the expiry, which the others test, comes last. There
the statement reports through `LAST_INSERT_ID(expr)`: SQLAlchemy's MySQL dialect sets
CLIENT_FOUND_ROWS, under which a row left as it was counts 1, as an inserted row does
(and a replaced one 2), so the row count cannot tell "inserted" from "already there".
"""

from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Delete,
    Executable,
    Insert,
    String,
    Table,
    case,
    delete,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import mysql, postgresql, sqlite

from app.essentials.cache.models import CacheEntry, CacheLock

ENTRIES = cast(Table, CacheEntry.__table__)
LOCKS = cast(Table, CacheLock.__table__)
_UNSIGNED = 2**64


def live(table: Table, now: int) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


class Statements:
    """The statements of one backend, and how to read their answers."""

    def __init__(self, dialect: str) -> None:
        self.mysql = dialect == "mysql"
        self._insert = {"postgresql": postgresql.insert, "mysql": mysql.insert}.get(
            dialect, sqlite.insert
        )

    def put(self, key: str, value: str, expires_at: int | None) -> Executable:
        insert = self._insert(ENTRIES).values(key=key, value=value, expires_at=expires_at)
        return self._on_conflict(insert, ["value", "expires_at"], lambda _, new: new)

    def claim(self, table: Table, values: dict[str, Any], now: int) -> Executable:
        """Insert, or replace a row that has expired; a live row stays as it was.
        `claimed` reads whether it did."""
        insert = self._insert(table).values(**values)
        columns = [name for name in values if name != "key"]  # the expiry last
        expired = table.c.expires_at <= now
        if not self.mysql:
            return self._on_conflict(insert, columns, lambda _, new: new, where=expired)

        def change(old: Any, new: Any) -> Any:
            if old is not table.c.expires_at:
                return func.if_(expired, new, old)
            # Marks "left as it was" for `claimed`; an insert reports 0.
            return func.if_(expired, new, func.if_(func.last_insert_id(1), old, old))

        return self._on_conflict(insert, columns, change)

    def claimed(self, result: CursorResult[Any]) -> bool:
        if self.mysql:
            return result.lastrowid == 0
        return result.rowcount == 1

    def increment(self, key: str, by: int, expires_at: int | None, now: int) -> Executable:
        """Add `by` to the integer the value holds; an expired row starts again from 0.
        A value that is not an integer's digits becomes NULL, which the NOT NULL column
        refuses (SQLite would otherwise read "abc" as 0; the others refuse the cast)."""
        insert = self._insert(ENTRIES).values(
            key=key, value=self._reported(literal(by, BigInteger)), expires_at=expires_at
        )
        current = sql_cast(ENTRIES.c.value, BigInteger)
        is_integer = sql_cast(current, String) == ENTRIES.c.value
        expired = ENTRIES.c.expires_at <= now

        def change(old: Any, new: Any) -> Any:
            if old is ENTRIES.c.expires_at:
                return case((expired, new), else_=old)
            added = case((is_integer, self._reported(current + by)), else_=null())
            return case((expired, new), else_=added)

        upsert = self._on_conflict(insert, ["value", "expires_at"], change)
        return upsert if self.mysql else upsert.returning(ENTRIES.c.value)

    def counted(self, result: CursorResult[Any]) -> int:
        if self.mysql:
            # LAST_INSERT_ID is unsigned: a negative total comes back as 2**64 + total.
            total = int(result.lastrowid)
            return total - _UNSIGNED if total >= _UNSIGNED // 2 else total
        return int(result.scalar_one())

    def _reported(self, total: Any) -> Any:
        """`total` as text; on MySQL also through LAST_INSERT_ID, cast back to signed."""
        if self.mysql:
            total = sql_cast(func.last_insert_id(total), BigInteger)
        return sql_cast(total, String)

    def delete_expired(self, table: Table, now: int, limit: int) -> Delete | None:
        """At most `limit` expired rows, by primary key, in one statement; None on MySQL,
        which takes no LIMIT in an IN subquery (there: `expired_keys`, then `delete_keys`)."""
        if self.mysql:
            return None
        keys = select(table.c.key).where(table.c.expires_at <= now).limit(limit)
        if self._insert is postgresql.insert:
            keys = keys.with_for_update(skip_locked=True)  # rows being rewritten: next time
        return delete(table).where(table.c.key.in_(keys), table.c.expires_at <= now)

    def _on_conflict(
        self, insert: Any, columns: list[str], change: Any, where: Any = None
    ) -> Insert:
        """The upsert: each of `columns` set to `change(old, new)` when the key exists."""
        table = insert.table
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


def expired_keys(table: Table, now: int, limit: int) -> Executable:
    return select(table.c.key).where(table.c.expires_at <= now).limit(limit)


def delete_keys(table: Table, keys: list[str], *also: ColumnElement[bool]) -> Delete:
    return delete(table).where(table.c.key.in_(keys), *also)
