"""Statements every domain writes the same way."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from app.core.db.reads import Reads


def columns_for(model: Any, record: Any) -> list[Any]:
    """The columns of `model`'s table named like the fields of the dataclass `record`,
    in their order: `select(*columns_for(Job, JobRecord))` reads rows that
    `JobRecord(**row._asdict())` takes as they come."""
    return [model.__table__.c[name] for name in record.__dataclass_fields__]


async def count_rows(reads: Reads, model: Any, *where: ColumnElement[bool]) -> int:
    """How many rows of `model` match every condition of `where` (committed ones)."""
    (row,) = await reads.all(select(func.count()).select_from(model).where(*where))
    return int(row[0])


async def delete_by_ids(
    connection: AsyncConnection,
    key: InstrumentedAttribute[int],
    ids: Sequence[int],
    *where: ColumnElement[bool],
) -> int:
    """Delete the rows whose primary key `key` is in `ids` (and that match `where`);
    returns how many went.

    One `IN (...)` statement, except on MySQL and MariaDB: there, for a table its
    statistics call small (a queue's, emptied and filled all day), the optimizer may
    scan the whole table instead of looking the keys up, and a scanning DELETE waits
    on every row another transaction holds; two of them deadlock. There each row is
    deleted by `key = ?`, which always goes straight to it.
    """
    if not ids:
        return 0
    statement = delete(key.class_).where(*where)
    if connection.dialect.name == "mysql":
        result = await connection.execute(
            statement.where(key == bindparam("delete_id")), [{"delete_id": id_} for id_ in ids]
        )
    else:
        result = await connection.execute(statement.where(key.in_(ids)))
    return int(result.rowcount)
