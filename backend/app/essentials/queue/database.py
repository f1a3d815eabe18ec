"""The `database` queue backend (`QUEUE_BACKEND=database`): jobs in the auth database.

A worker claims a batch of jobs in one short transaction: `SELECT ... FOR UPDATE SKIP
LOCKED` on PostgreSQL and MariaDB (so workers never wait on each other's rows), under
the engine's `BEGIN IMMEDIATE` on SQLite (one writer at a time, so the select and
the update cannot interleave with another claim); then one `UPDATE` by primary key
marks them its own and counts their attempt. The same transaction first deletes, by
primary key, the jobs the worker finished since its last claim: one round of
statements per batch of jobs, not per job.

MariaDB runs these transactions at READ COMMITTED (`claiming_options`): at its
default REPEATABLE READ a locking read also locks the gaps between index entries, and
a dispatch inserting a job into a gap would wait for the claim to commit.
"""

import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.db.engines import claiming_options
from app.core.db.queries import delete_by_ids
from app.core.db.registry import Database
from app.core.db.types import utc_now
from app.essentials.queue import batches, failures
from app.essentials.queue.backend import (
    QueueCounts,
    RegisteredWorker,
    ReservedJob,
    RunningJob,
    WorkerGone,
    WorkerInfo,
)
from app.essentials.queue.jobs import JobMessage
from app.essentials.queue.models import QueuedJob, QueueWorker

_CLAIMED_COLUMNS = (
    QueuedJob.id,
    QueuedJob.uuid,
    QueuedJob.name,
    QueuedJob.queue,
    QueuedJob.payload,
    QueuedJob.attempts,
    QueuedJob.max_attempts,
    QueuedJob.backoff,
    QueuedJob.timeout,
    QueuedJob.batch_id,
)


def job_row(message: JobMessage) -> dict[str, Any]:
    options = message.options
    return {
        "uuid": message.uuid,
        "queue": options.queue,
        "name": message.name,
        "payload": message.arguments,
        "attempts": 0,
        "max_attempts": options.max_attempts,
        "backoff": json.dumps(list(options.backoff)),
        "timeout": options.timeout,
        "batch_id": message.batch_id,
        "available_at": message.available_at,
        "created_at": utc_now(),
    }


class DatabaseBackend:
    """Jobs as rows of the auth database's `jobs` table (see `models.py`)."""

    def __init__(self, auth: Database) -> None:
        self.auth = auth
        self._options = claiming_options(auth.engine)

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.auth.engine.connect() as connection:
            if self._options:
                connection = await connection.execution_options(**self._options)
            async with connection.begin():
                yield connection

    # --- dispatch ---------------------------------------------------------------------

    async def push(self, messages: Sequence[JobMessage]) -> None:
        async with self._begin() as connection:
            await insert_jobs(connection, messages)

    async def push_within(self, auth_db: AsyncSession, messages: Sequence[JobMessage]) -> None:
        await insert_jobs(await auth_db.connection(), messages)

    # --- what a worker does -----------------------------------------------------------

    async def reserve(
        self,
        worker_id: int,
        queues: Sequence[str],
        limit: int,
        finished: Sequence[ReservedJob] = (),
    ) -> list[ReservedJob]:
        async with self._begin() as connection:
            # The claim is a heartbeat too, and its row lock keeps `recover` (which
            # skips locked workers) from forgetting this worker while it claims.
            await self._beat(connection, worker_id)
            if finished:
                await self._finish(connection, worker_id, finished)
            now = utc_now()
            rows: list[Any] = []
            for queue in queues:
                if len(rows) >= limit:
                    break
                rows += (
                    await connection.execute(
                        select(*_CLAIMED_COLUMNS)
                        .where(
                            QueuedJob.worker_id.is_(None),
                            QueuedJob.queue == queue,
                            QueuedJob.available_at <= now,
                        )
                        .order_by(QueuedJob.available_at, QueuedJob.id)
                        .limit(limit - len(rows))
                        .with_for_update(skip_locked=True)
                    )
                ).all()
            if rows:
                await connection.execute(
                    update(QueuedJob)
                    .where(QueuedJob.id.in_([row.id for row in rows]))
                    .values(worker_id=worker_id, reserved_at=now, attempts=QueuedJob.attempts + 1)
                )
        return [
            ReservedJob(
                id=row.id,
                uuid=row.uuid,
                name=row.name,
                queue=row.queue,
                payload=row.payload,
                attempts=row.attempts + 1,
                max_attempts=row.max_attempts,
                backoff=row.backoff,
                timeout=row.timeout,
                batch_id=row.batch_id,
            )
            for row in rows
        ]

    async def _finish(
        self, connection: AsyncConnection, worker_id: int, finished: Sequence[ReservedJob]
    ) -> None:
        # Only rows this worker still holds: had it been presumed dead, another worker
        # may hold them now, and counting them in their batch is that worker's to do.
        held = QueuedJob.worker_id == worker_id
        alone = [job.id for job in finished if job.batch_id is None]
        await delete_by_ids(connection, QueuedJob.id, alone, held)
        done = Counter[int]()
        for job in finished:
            if job.batch_id is not None:
                done[job.batch_id] += await delete_by_ids(connection, QueuedJob.id, [job.id], held)
        if done:
            await insert_jobs(connection, await batches.settle(connection, done, {}))

    async def retry_later(self, worker_id: int, job: ReservedJob, available_at: datetime) -> None:
        async with self._begin() as connection:
            await connection.execute(
                update(QueuedJob)
                .where(QueuedJob.id == job.id, QueuedJob.worker_id == worker_id)
                .values(worker_id=None, reserved_at=None, available_at=available_at)
            )

    async def fail(self, worker_id: int, job: ReservedJob, exception: str) -> None:
        async with self._begin() as connection:
            deleted = await connection.execute(
                delete(QueuedJob).where(QueuedJob.id == job.id, QueuedJob.worker_id == worker_id)
            )
            if deleted.rowcount != 1:
                return  # no longer this worker's: whoever holds it decides
            await failures.record(connection, job, exception)
            if job.batch_id is not None:
                final = await batches.settle(connection, {}, {job.batch_id: 1})
                await insert_jobs(connection, final)

    async def release(self, worker_id: int, jobs: Sequence[ReservedJob]) -> None:
        if not jobs:
            return
        async with self._begin() as connection:
            await connection.execute(
                update(QueuedJob)
                .where(QueuedJob.id.in_([job.id for job in jobs]), QueuedJob.worker_id == worker_id)
                .values(worker_id=None, reserved_at=None, attempts=QueuedJob.attempts - 1)
            )

    # --- workers and their heartbeats -------------------------------------------------

    async def register(self, worker: WorkerInfo) -> int:
        now = utc_now()
        async with self._begin() as connection:
            created = await connection.execute(
                insert(QueueWorker)
                .returning(QueueWorker.id)
                .values(
                    hostname=worker.hostname[:255],
                    pid=worker.pid,
                    queues=",".join(worker.queues)[:255],
                    concurrency=worker.concurrency,
                    started_at=now,
                    heartbeat_at=now,
                )
            )
        return created.scalar_one()

    async def heartbeat(self, worker_id: int) -> None:
        async with self._begin() as connection:
            await self._beat(connection, worker_id)

    async def _beat(self, connection: AsyncConnection, worker_id: int) -> None:
        beat = await connection.execute(
            update(QueueWorker).where(QueueWorker.id == worker_id).values(heartbeat_at=utc_now())
        )
        if beat.rowcount != 1:
            raise WorkerGone(worker_id)

    async def deregister(self, worker_id: int) -> None:
        async with self._begin() as connection:
            await connection.execute(
                update(QueuedJob)
                .where(QueuedJob.worker_id == worker_id)
                .values(worker_id=None, reserved_at=None)
            )
            await connection.execute(delete(QueueWorker).where(QueueWorker.id == worker_id))

    async def recover(self, stale_before: datetime) -> int:
        async with self._begin() as connection:
            dead = list(
                await connection.scalars(
                    select(QueueWorker.id)
                    .where(QueueWorker.heartbeat_at < stale_before)
                    .with_for_update(skip_locked=True)
                )
            )
            if not dead:
                return 0
            recovered = await connection.execute(
                update(QueuedJob)
                .where(QueuedJob.worker_id.in_(dead))
                .values(worker_id=None, reserved_at=None)
            )
            await delete_by_ids(connection, QueueWorker.id, dead)
        return recovered.rowcount

    # --- what people look at ----------------------------------------------------------

    async def counts(self) -> list[QueueCounts]:
        now = utc_now()
        waiting = QueuedJob.worker_id.is_(None)
        query = select(
            QueuedJob.queue,
            func.sum(case((waiting & (QueuedJob.available_at <= now), 1), else_=0)),
            func.sum(case((waiting & (QueuedJob.available_at > now), 1), else_=0)),
            func.sum(case((waiting, 0), else_=1)),
        ).group_by(QueuedJob.queue)
        async with self.auth.autocommit() as connection:
            rows = (await connection.execute(query)).all()
        return [
            QueueCounts(queue, ready=int(ready), delayed=int(delayed), running=int(running))
            for queue, ready, delayed, running in rows
        ]

    async def running(self, limit: int) -> list[RunningJob]:
        query = (
            select(
                QueuedJob.id,
                QueuedJob.uuid,
                QueuedJob.name,
                QueuedJob.queue,
                QueuedJob.attempts,
                QueuedJob.max_attempts,
                QueuedJob.reserved_at,
                QueuedJob.worker_id,
            )
            .where(QueuedJob.worker_id.is_not(None))
            .order_by(QueuedJob.reserved_at, QueuedJob.id)
            .limit(limit)
        )
        async with self.auth.autocommit() as connection:
            rows = (await connection.execute(query)).all()
        return [RunningJob(**row._asdict()) for row in rows]

    async def workers(self) -> list[RegisteredWorker]:
        query = select(
            QueueWorker.id,
            QueueWorker.hostname,
            QueueWorker.pid,
            QueueWorker.queues,
            QueueWorker.concurrency,
            QueueWorker.started_at,
            QueueWorker.heartbeat_at,
        ).order_by(QueueWorker.id)
        async with self.auth.autocommit() as connection:
            rows = (await connection.execute(query)).all()
        return [RegisteredWorker(**row._asdict()) for row in rows]


async def insert_jobs(connection: AsyncConnection, messages: Sequence[JobMessage]) -> None:
    if messages:
        await connection.execute(insert(QueuedJob), [job_row(message) for message in messages])
