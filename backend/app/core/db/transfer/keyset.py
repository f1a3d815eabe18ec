"""Reading a whole table in primary-key order, one batch at a time (keyset pagination).

Each batch starts after the last key of the one before (`WHERE key > :last ORDER BY
key LIMIT n`), never at an offset: every batch costs one index range scan, however
far into the table it is, and a job that stopped can start again after the last key
it finished.
"""

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

Key = tuple[Any, ...]


def key_columns(table: Table) -> list[Any]:
    columns = list(table.primary_key.columns)
    if not columns:
        raise ValueError(f"table {table.name} has no primary key to read it in order by")
    return columns


def key_of(table: Table, row: Row[Any]) -> Key:
    return tuple(row._mapping[column] for column in key_columns(table))


def after(table: Table, key: Key) -> ColumnElement[bool]:
    """Rows whose primary key comes after `key`, in the database's own order."""
    columns = key_columns(table)
    if len(columns) == 1:
        return columns[0] > key[0]  # type: ignore[no-any-return]
    return tuple_(*columns) > tuple_(*key)


def dump_key(key: Key) -> str:
    """A key as text, to be kept as a checkpoint (keys are integers or strings)."""
    return json.dumps(list(key))


def load_key(text: str | None) -> Key | None:
    return None if text is None else tuple(json.loads(text))


async def batches(
    connection: AsyncConnection, table: Table, size: int, start_after: Key | None = None
) -> AsyncIterator[Sequence[Row[Any]]]:
    """Every row of `table` after `start_after`, in primary-key order, `size` at a time."""
    query = select(table).order_by(*key_columns(table)).limit(size)
    last = start_after
    while True:
        rows = (
            await connection.execute(query if last is None else query.where(after(table, last)))
        ).all()
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = key_of(table, rows[-1])
