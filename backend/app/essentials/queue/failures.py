"""`failed_jobs`: record a job that failed for good, list, retry, forget and flush them.

Every backend keeps its failures here, in the auth database, so that the CLI and the
admin page show them the same way whatever carries the jobs. Functions take a
connection in the caller's transaction.
"""

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.queries import delete_by_ids
from app.core.db.types import utc_now
from app.essentials.queue.backend import ReservedJob
from app.essentials.queue.jobs import JobMessage, JobOptions
from app.essentials.queue.models import FailedJob

FailedJobRow = Row[Any]  # the columns of `failed_jobs`

DELETE_BATCH = 1000
# MySQL's TEXT holds 64 KiB; a traceback's end says the most, so that is what is kept.
MAX_EXCEPTION_CHARACTERS = 16_000


async def record(connection: AsyncConnection, job: ReservedJob, exception: str) -> None:
    await connection.execute(
        insert(FailedJob).values(
            uuid=job.uuid,
            queue=job.queue,
            name=job.name,
            payload=job.payload,
            exception=exception[-MAX_EXCEPTION_CHARACTERS:],
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            backoff=job.backoff,
            timeout=job.timeout,
            batch_id=job.batch_id,
            failed_at=utc_now(),
        )
    )


async def page(
    connection: AsyncConnection, *, limit: int, before_id: int | None = None
) -> Sequence[FailedJobRow]:
    """Failed jobs, newest first, in primary-key order (keyset pages)."""
    query = select(FailedJob.__table__).order_by(FailedJob.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(FailedJob.id < before_id)
    return (await connection.execute(query)).all()


async def take(connection: AsyncConnection, failed_id: int | None) -> list[JobMessage]:
    """Remove one failed job (`failed_id`), or all of them (None), and return them as
    messages to enqueue again, each with its attempts restored and its uuid kept."""
    query = select(FailedJob.__table__).order_by(FailedJob.id).with_for_update()
    if failed_id is not None:
        query = query.where(FailedJob.id == failed_id)
    rows = (await connection.execute(query)).all()
    await delete_by_ids(connection, FailedJob.id, [row.id for row in rows])
    now = utc_now()
    return [
        JobMessage(
            uuid=row.uuid,
            name=row.name,
            arguments=row.payload,
            options=JobOptions(
                queue=row.queue,
                max_attempts=row.max_attempts,
                backoff=tuple(json.loads(row.backoff)),
                timeout=row.timeout,
            ),
            available_at=now,
            batch_id=row.batch_id,
        )
        for row in rows
    ]


async def forget(connection: AsyncConnection, failed_id: int) -> bool:
    deleted = await connection.execute(delete(FailedJob).where(FailedJob.id == failed_id))
    return deleted.rowcount == 1


async def delete_some(connection: AsyncConnection) -> int:
    """Delete up to DELETE_BATCH failed jobs, oldest first: a large table is emptied in
    short transactions, never by one statement that holds it for minutes."""
    ids = list(
        await connection.scalars(select(FailedJob.id).order_by(FailedJob.id).limit(DELETE_BATCH))
    )
    return await delete_by_ids(connection, FailedJob.id, ids)


async def count_by_queue(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(select(FailedJob.queue, func.count()).group_by(FailedJob.queue))
    return {queue: int(count) for queue, count in rows.all()}
