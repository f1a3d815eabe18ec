"""The statements of the `database` queue backend that a worker repeats, built once
(each round only binds its parameters), and the rows a dispatch writes."""

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.queries import columns_for
from app.core.db.types import utc_now
from app.essentials.queue.backend import ReservedJob
from app.essentials.queue.jobs import JobMessage
from app.essentials.queue.models import QueuedJob, QueueWorker

# What a claim reads: the fields of a ReservedJob.
CLAIMED_COLUMNS = columns_for(QueuedJob, ReservedJob)


# The statements a worker repeats, built once; each round only binds parameters.
_READY = (
    QueuedJob.worker_id.is_(None),
    QueuedJob.queue == bindparam("claim_queue"),
    QueuedJob.available_at <= bindparam("claim_now"),
    # A worker that was forgotten claims nothing (see `DatabaseBackend.recover`).
    select(QueueWorker.id).where(QueueWorker.id == bindparam("claim_worker")).exists(),
)
_OLDEST_FIRST = (QueuedJob.available_at, QueuedJob.id)
_LIMIT = bindparam("claim_limit", type_=Integer)
_MARK = update(QueuedJob).values(
    worker_id=bindparam("claim_worker"),
    reserved_at=bindparam("claim_now"),
    attempts=QueuedJob.attempts + 1,
)
# PostgreSQL and SQLite: UPDATE ... WHERE id IN (SELECT ... SKIP LOCKED) RETURNING.
CLAIM_RETURNING = _MARK.where(
    QueuedJob.id.in_(
        select(QueuedJob.id)
        .where(*_READY)
        .order_by(*_OLDEST_FIRST)
        .limit(_LIMIT)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
).returning(*CLAIMED_COLUMNS)
# PostgreSQL: the same, deleting the jobs the worker finished in a WITH.
FINISH_AND_CLAIM = CLAIM_RETURNING.add_cte(
    delete(QueuedJob)
    .where(
        QueuedJob.id.in_(bindparam("finished_ids", expanding=True)),
        QueuedJob.worker_id == bindparam("claim_worker"),
    )
    .cte("finished")
)
# MariaDB has no UPDATE ... RETURNING, nor LIMIT in an IN subquery: select, then update.
SELECT_READY = (
    select(*CLAIMED_COLUMNS)
    .where(*_READY)
    .order_by(*_OLDEST_FIRST)
    .limit(_LIMIT)
    .with_for_update(skip_locked=True)
)
CLAIM_IDS = _MARK.where(QueuedJob.id.in_(bindparam("claim_ids", expanding=True)))


def job_row(message: JobMessage, attempts: int = 0) -> dict[str, Any]:
    options = message.options
    return {
        "uuid": message.uuid,
        "queue": options.queue,
        "name": message.name,
        "payload": message.arguments,
        "attempts": attempts,
        "max_attempts": options.max_attempts,
        "backoff": json.dumps(list(options.backoff)),
        "timeout": options.timeout,
        "batch_id": message.batch_id,
        "available_at": message.available_at,
        "created_at": utc_now(),
    }


async def insert_jobs(
    connection: AsyncConnection, messages: Sequence[JobMessage], *, attempts: int = 0
) -> None:
    """Write `messages` as rows of `jobs`, each with `attempts` already spent."""
    if messages:
        rows = [job_row(message, attempts) for message in messages]
        await connection.execute(insert(QueuedJob), rows)
