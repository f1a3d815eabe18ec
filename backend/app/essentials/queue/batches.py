"""`job_batches`: a group of jobs counted down to a final job that runs once.

A batch is done when each of its jobs has either succeeded or failed for good. The
counts change by single-statement updates (`pending_jobs = pending_jobs - :n`), in
the transaction that removes the finished jobs; the transaction that brings
`pending_jobs` to 0 also wins the guarded update of `finished_at` and enqueues the
final job, so two workers finishing the last two jobs at once dispatch it once.
Once finished, a batch's counts are final: a job of it run again later (a retry by
hand, the final job itself) changes nothing.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.queries import columns_for
from app.core.db.types import utc_now
from app.essentials.queue.jobs import JobMessage
from app.essentials.queue.models import JobBatch


@dataclass(frozen=True, slots=True)
class BatchStatus:
    id: int
    name: str
    total_jobs: int
    pending_jobs: int
    failed_jobs: int
    created_at: datetime
    finished_at: datetime | None


async def create(
    connection: AsyncConnection, *, name: str, total: int, then: JobMessage | None
) -> int:
    created = await connection.execute(
        insert(JobBatch)
        .returning(JobBatch.id)
        .values(
            name=name,
            total_jobs=total,
            pending_jobs=total,
            failed_jobs=0,
            then_job=json.dumps(then.payload()) if then is not None else None,
            created_at=utc_now(),
        )
    )
    return created.scalar_one()


async def settle(
    connection: AsyncConnection, done: Mapping[int, int], failed: Mapping[int, int]
) -> list[JobMessage]:
    """Count jobs that left their batches (`done`: succeeded, `failed`: for good), by
    batch id; returns the final jobs of the batches this finished."""
    final: list[JobMessage] = []
    # In id order, so that two transactions settling the same batches cannot deadlock.
    for batch_id in sorted(set(done) | set(failed)):
        left, lost = done.get(batch_id, 0) + failed.get(batch_id, 0), failed.get(batch_id, 0)
        await connection.execute(
            update(JobBatch)
            .where(JobBatch.id == batch_id, JobBatch.finished_at.is_(None))
            .values(
                pending_jobs=JobBatch.pending_jobs - left,
                failed_jobs=JobBatch.failed_jobs + lost,
            )
        )
        then = await _finish(connection, batch_id)
        if then is not None:
            final.append(JobMessage.from_payload({**then, "batch_id": batch_id}))
    return final


async def _finish(connection: AsyncConnection, batch_id: int) -> dict[str, Any] | None:
    """Mark the batch finished if nothing is pending; the final job's payload if this
    call finished it."""
    finished = await connection.execute(
        update(JobBatch)
        .where(
            JobBatch.id == batch_id,
            JobBatch.pending_jobs <= 0,
            JobBatch.finished_at.is_(None),
        )
        .values(finished_at=utc_now())
    )
    if finished.rowcount != 1:
        return None
    then = await connection.scalar(select(JobBatch.then_job).where(JobBatch.id == batch_id))
    return json.loads(then) if then else None


async def reopen(connection: AsyncConnection, batch_id: int) -> bool:
    """A failed job of an unfinished batch is retried: it is pending again. False if
    the batch has finished (the retried job then runs on its own)."""
    reopened = await connection.execute(
        update(JobBatch)
        .where(JobBatch.id == batch_id, JobBatch.finished_at.is_(None))
        .values(
            pending_jobs=JobBatch.pending_jobs + 1,
            failed_jobs=JobBatch.failed_jobs - 1,
        )
    )
    return reopened.rowcount == 1


async def get(connection: AsyncConnection, batch_id: int) -> BatchStatus | None:
    query = select(*columns_for(JobBatch, BatchStatus)).where(JobBatch.id == batch_id)
    row = (await connection.execute(query)).first()
    return None if row is None else BatchStatus(**row._asdict())
