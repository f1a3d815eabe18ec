"""`prune`: delete the rows that match, a batch per transaction, by primary key.

What maintenance removes (ended sessions, old failed jobs...) may be millions of rows:
one `DELETE ... WHERE` would hold its locks, and grow its undo log, for minutes. Here
each transaction selects the next `batch` matching keys, in key order and after the
last batch's, and deletes those rows by key, checking the conditions again so that a
row changed in between (a session refreshed) stays.
"""

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute

from app.core.config import DatabaseName
from app.core.db.integrity import integrity_session
from app.core.db.queries import delete_by_ids
from app.core.db.registry import Databases

PRUNE_BATCH = 1000


async def prune(
    databases: Databases,
    name: DatabaseName,
    key: InstrumentedAttribute[int],
    *where: ColumnElement[bool],
    purpose: str,
    batch: int = PRUNE_BATCH,
) -> int:
    """Delete the rows of `key`'s table (in the database `name`) that match every
    condition of `where`, `batch` rows per transaction; returns how many went."""
    pruned = 0
    after: int | None = None
    while True:
        query = select(key).where(*where).order_by(key).limit(batch)
        if after is not None:
            query = query.where(key > after)
        async with integrity_session(databases, name, purpose) as session:
            connection = await session.connection()
            ids = list(await connection.scalars(query))
            pruned += await delete_by_ids(connection, key, ids, *where)
        if len(ids) < batch:
            return pruned
        after = ids[-1]
