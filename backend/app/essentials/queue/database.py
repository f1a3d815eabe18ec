"""The `database` queue backend (`QUEUE_BACKEND=database`): jobs in the auth database.

A worker works in rounds: it deletes, by primary key, the jobs it finished since the
last round, and claims as many ready jobs as it has free slots, counting their
attempt. Ready jobs are chosen with `FOR UPDATE SKIP LOCKED` on PostgreSQL and
MariaDB, so workers never wait on each other's rows, and under the engine's `BEGIN
IMMEDIATE` on SQLite (one writer at a time, so no two claims interleave).

- PostgreSQL: the round is one statement (`statements.FINISH_AND_CLAIM`: a DELETE in a
  WITH, then `UPDATE ... WHERE id IN (SELECT ... SKIP LOCKED) RETURNING`) on an
  autocommit connection the worker keeps: one round trip and one commit per batch.
- SQLite: the same UPDATE ... RETURNING, after the DELETE, in one transaction.
- MariaDB (no UPDATE ... RETURNING): a locking SELECT then an UPDATE by primary key,
  in transactions at READ COMMITTED (`claiming_options`): at its default REPEATABLE
  READ a locking read also locks the gaps between index entries, and a dispatch
  inserting a job into a gap would wait for the claim to commit.

Measured in `python -m tools.bench.queue` (README, Background jobs). A little over 300
lines: each method is one step of the `QueueBackend` protocol on the same tables.
"""

import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.base import AuthSession
from app.core.db.engines import claiming_options
from app.core.db.queries import columns_for, delete_by_ids
from app.core.db.registry import Database
from app.core.db.types import utc_now
from app.essentials.queue import batches, failures, statements, workers
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

logger = logging.getLogger(__name__)

# The worker holding a job is registered; the workers that hold jobs without being so.
_REGISTERED = select(QueueWorker.id).where(QueueWorker.id == QueuedJob.worker_id)
_UNREGISTERED_HOLDERS = (
    select(QueuedJob.worker_id)
    .distinct()
    .where(QueuedJob.worker_id.is_not(None), ~_REGISTERED.exists())
)


class DatabaseBackend:
    """Jobs as rows of the auth database's `jobs` table (see `models.py`)."""

    def __init__(self, auth: Database[AuthSession]) -> None:
        self.auth = auth
        self._options = claiming_options(auth.engine)
        # PostgreSQL and SQLite claim with one UPDATE ... RETURNING; PostgreSQL runs the
        # worker's statements without BEGIN and COMMIT (SQLite needs BEGIN IMMEDIATE).
        self._returning_claims = auth.engine.dialect.update_returning
        self._autocommit = auth.engine.dialect.name == "postgresql"
        self._held: dict[int, AsyncConnection] = {}  # each worker's claiming connection

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
            await statements.insert_jobs(connection, messages)

    async def push_within(self, auth_db: AuthSession, messages: Sequence[JobMessage]) -> None:
        await statements.insert_jobs(await auth_db.connection(), messages)

    # --- what a worker does -----------------------------------------------------------

    async def reserve(
        self,
        worker_id: int,
        queues: Sequence[str],
        limit: int,
        finished: Sequence[ReservedJob] = (),
    ) -> list[ReservedJob]:
        held = QueuedJob.worker_id == worker_id
        members = [job for job in finished if job.batch_id is not None]
        if members:
            async with self._begin() as connection:
                await self._finish_members(connection, held, members)
        alone = [job.id for job in finished if job.batch_id is None]
        async with self._claiming(worker_id) as connection:
            if not self._autocommit or limit <= 0:
                await delete_by_ids(connection, QueuedJob.id, alone, held)
                alone = []
            claimed: list[ReservedJob] = []
            for queue in queues:
                if len(claimed) >= limit:
                    break
                wanted = limit - len(claimed)
                claimed += await self._claim(connection, worker_id, queue, wanted, alone)
                alone = []
        return claimed

    @asynccontextmanager
    async def _claiming(self, worker_id: int) -> AsyncIterator[AsyncConnection]:
        """Where a worker deletes what it finished and claims more, round after round:
        on a connection it keeps (no pool checkout, and its ping, per round); on
        PostgreSQL, where each of these is one statement, without BEGIN and COMMIT.
        A connection that fails is dropped, and the next round opens another."""
        connection = self._held.get(worker_id)
        if connection is None:
            connection = await self.auth.engine.connect()
            options = {"isolation_level": "AUTOCOMMIT"} if self._autocommit else self._options
            if options:
                connection = await connection.execution_options(**options)
            self._held[worker_id] = connection
        try:
            if self._autocommit:
                yield connection
            else:
                async with connection.begin():
                    yield connection
        except BaseException:
            await self._let_go(worker_id)
            raise

    async def _let_go(self, worker_id: int) -> None:
        connection = self._held.pop(worker_id, None)
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already broken: the pool discards it
                logger.debug("closing a claiming connection failed", exc_info=True)

    async def _claim(
        self,
        connection: AsyncConnection,
        worker_id: int,
        queue: str,
        limit: int,
        finished: Sequence[int] = (),
    ) -> list[ReservedJob]:
        """Up to `limit` ready jobs of `queue`, marked as `worker_id`'s with one more
        attempt counted; none if the worker was forgotten (see `recover`). On
        PostgreSQL the same statement deletes the `finished` jobs (a DELETE in a WITH),
        so that a round of a busy worker is one statement: one round trip, one commit."""
        parameters = {
            "claim_worker": worker_id,
            "claim_queue": queue,
            "claim_now": utc_now(),
            "claim_limit": limit,
        }
        if self._returning_claims:
            if finished:
                updated = await connection.execute(
                    statements.FINISH_AND_CLAIM, {**parameters, "finished_ids": finished}
                )
            else:
                updated = await connection.execute(statements.CLAIM_RETURNING, parameters)
            return [ReservedJob(**row._asdict()) for row in updated.all()]
        rows = (await connection.execute(statements.SELECT_READY, parameters)).all()
        if rows:
            ids = [row.id for row in rows]
            await connection.execute(statements.CLAIM_IDS, {**parameters, "claim_ids": ids})
        return [replace(ReservedJob(**row._asdict()), attempts=row.attempts + 1) for row in rows]

    async def _finish_members(
        self,
        connection: AsyncConnection,
        held: ColumnElement[bool],
        members: Sequence[ReservedJob],
    ) -> None:
        """Delete finished jobs of batches and count them there, in one transaction.
        Only rows this worker still holds count: had it been presumed dead, another
        worker may hold them now, and counting them is that worker's to do."""
        done = Counter[int]()
        for job in members:
            assert job.batch_id is not None
            done[job.batch_id] += await delete_by_ids(connection, QueuedJob.id, [job.id], held)
        await statements.insert_jobs(connection, await batches.settle(connection, done, {}))

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
                await statements.insert_jobs(connection, final)

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
        async with self._begin() as connection:
            return await workers.register(connection, worker)

    async def heartbeat(self, worker_id: int) -> None:
        async with self._begin() as connection:
            alive = await workers.beat(connection, worker_id)
        if not alive:
            raise WorkerGone(worker_id)

    async def deregister(self, worker_id: int) -> None:
        await self._let_go(worker_id)
        async with self._begin() as connection:
            await connection.execute(
                update(QueuedJob)
                .where(QueuedJob.worker_id == worker_id)
                .values(worker_id=None, reserved_at=None)
            )
            await workers.forget(connection, worker_id)

    async def recover(self, stale_before: datetime) -> int:
        """Forget the stale workers, then release every job held by a worker that is
        not registered: theirs, and any claim made, by a worker presumed dead, in the
        moment it was being forgotten (a claim checks that its worker is registered,
        but takes no lock on it, so as not to cost a round trip).

        Every worker runs this every heartbeat interval, and almost always there is
        nothing to do: so it first reads, without locks, whether a worker is stale and
        who holds jobs while unregistered, and writes only for them. (An UPDATE over
        every held job locked each one as it went, on MariaDB in a secondary index, and
        deadlocked with the workers deleting the jobs they had finished.)"""
        async with self.auth.autocommit() as connection:
            stale = await workers.any_stale(connection, stale_before)
            holders = list(await connection.scalars(_UNREGISTERED_HOLDERS))
        if stale:
            async with self._begin() as connection:
                dead = await workers.forget_stale(connection, stale_before)
            for worker_id in dead:  # one of this process's, stuck: its connection goes too
                await self._let_go(worker_id)
            holders += dead
        if not holders:
            return 0
        async with self._begin() as connection:
            recovered = await connection.execute(
                update(QueuedJob)
                .where(QueuedJob.worker_id.in_(holders), ~_REGISTERED.exists())
                .values(worker_id=None, reserved_at=None)
            )
        return recovered.rowcount

    async def close(self) -> None:
        for worker_id in list(self._held):
            await self._let_go(worker_id)

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
            select(*columns_for(QueuedJob, RunningJob))
            .where(QueuedJob.worker_id.is_not(None))
            .order_by(QueuedJob.reserved_at, QueuedJob.id)
            .limit(limit)
        )
        async with self.auth.autocommit() as connection:
            rows = (await connection.execute(query)).all()
        return [RunningJob(**row._asdict()) for row in rows]

    async def workers(self) -> list[RegisteredWorker]:
        async with self.auth.autocommit() as connection:
            return list(await workers.listing(connection))
