"""What the broker backends (`QUEUE_BACKEND=redis|rabbitmq`) share: `BrokerBackend`.

Jobs ready to run, and the jobs a worker holds, are in the broker; a held job leaves
it only once its outcome is recorded (done, retried later, or in `failed_jobs`), so
a worker that dies loses nothing. The rest stays in the auth database, as with the
`database` backend: `failed_jobs`, `job_batches`, `queue_workers` (the heartbeats),
and the jobs not published yet, as rows of `jobs` without a worker:

- those dispatched within an auth transaction (`push_within`): the broker cannot join
  the transaction, so the job is written in it and published once it has committed
  (an outbox in the auth database): the job exists if and only if the transaction
  commits, and a crash after the commit leaves the row for the next publication;
- delayed jobs, and failed attempts waiting for their backoff: published when due.

`publish_due` publishes what is due, right after a commit that staged something, and
in every worker's rounds (every QUEUE_POLL_INTERVAL at most). It publishes, then
deletes the rows it published: at least once; a crash in between publishes a job
twice, which the Redis backend recognises (by uuid and attempt) and RabbitMQ does not.

Subclasses (`redis_broker`, `rabbitmq_broker`) say how a job is published, taken,
acknowledged and handed back in their broker.
"""

import json
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.engines import claiming_options
from app.core.db.queries import delete_by_ids
from app.core.db.registry import Database
from app.core.db.sessions import on_commit
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
from app.essentials.queue.jobs import JobMessage, JobOptions
from app.essentials.queue.models import QueuedJob

logger = logging.getLogger(__name__)

PUBLISH_BATCH = 500
# What a job carries in a broker: the fields of a ReservedJob but its id, which the
# broker gives it, and `attempts`, the attempts spent before this message.
Body = dict[str, Any]
_DUE = (
    select(*statements.CLAIMED_COLUMNS)
    .where(QueuedJob.worker_id.is_(None), QueuedJob.available_at <= bindparam("due_at"))
    .order_by(QueuedJob.available_at, QueuedJob.id)
    .limit(PUBLISH_BATCH)
    .with_for_update(skip_locked=True)
)


def body_of(message: JobMessage, attempts: int = 0) -> Body:
    """What a broker carries of a job: its `jobs` row without the times, which only
    the database's waiting rows need."""
    body = statements.job_row(message, attempts)
    del body["available_at"], body["created_at"]
    return body


def message_of(job: ReservedJob, available_at: datetime) -> JobMessage:
    """A held job as a message to stage again (a retry after its backoff)."""
    options = JobOptions(job.queue, job.max_attempts, tuple(json.loads(job.backoff)), job.timeout)
    return JobMessage(job.uuid, job.name, job.payload, options, available_at, job.batch_id)


class BrokerBackend(ABC):
    """The part of a broker backend in the auth database; see the module's docstring."""

    def __init__(self, auth: Database[AuthSession], settings: Settings) -> None:
        self.auth = auth
        self.url = settings.broker_url
        self.prefix = settings.queue_prefix
        self.publish_interval = settings.queue_poll_interval
        self._options = claiming_options(auth.engine)
        self._published_at = 0.0

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.auth.engine.connect() as connection:
            if self._options:
                connection = await connection.execution_options(**self._options)
            async with connection.begin():
                yield connection

    # --- what a broker does -----------------------------------------------------------

    @abstractmethod
    async def _publish(self, bodies: Sequence[Body]) -> None:
        """Put jobs in their queues, ready to run."""

    @abstractmethod
    async def _take(
        self, worker_id: int, queues: Sequence[str], limit: int, finished: Sequence[ReservedJob]
    ) -> list[ReservedJob]:
        """Acknowledge `finished` (their outcome is recorded), then take up to `limit`
        jobs for `worker_id`, `queues` in order, each with one more attempt counted."""

    @abstractmethod
    async def _holds(self, worker_id: int, job: ReservedJob) -> bool:
        """Whether `worker_id` still holds `job` (it was not presumed dead meanwhile)."""

    @abstractmethod
    async def _give_back(self, worker_id: int, jobs: Sequence[ReservedJob]) -> None:
        """Make held jobs ready again, their attempt refunded."""

    @abstractmethod
    async def _drop_worker(self, worker_id: int) -> None:
        """Make every job the worker holds ready again, its attempt kept counted."""

    @abstractmethod
    async def _recover(self, dead: Sequence[int]) -> int:
        """Make the jobs held by workers not registered (`dead` were just forgotten)
        ready again; returns how many."""

    @abstractmethod
    async def _ready(self, queues: set[str]) -> dict[str, int]:
        """Jobs ready in the broker, by queue: those of `queues` and any other it knows."""

    @abstractmethod
    async def _running(self) -> list[RunningJob]:
        """The jobs workers hold."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connections to the broker."""

    # --- dispatch ---------------------------------------------------------------------

    async def push(self, messages: Sequence[JobMessage]) -> None:
        now = utc_now()
        due = [body_of(message) for message in messages if message.available_at <= now]
        later = [message for message in messages if message.available_at > now]
        if later:
            async with self._begin() as connection:
                await statements.insert_jobs(connection, later)
        if due:
            await self._publish(due)

    async def push_within(self, auth_db: AuthSession, messages: Sequence[JobMessage]) -> None:
        if messages:
            await statements.insert_jobs(await auth_db.connection(), messages)
            on_commit(auth_db, self._publish_committed)

    async def publish_due(self) -> int:
        """Publish the staged jobs that are due, and delete their rows; returns how many."""
        published = 0
        while True:
            async with self._begin() as connection:
                rows = (await connection.execute(_DUE, {"due_at": utc_now()})).all()
                if rows:
                    bodies = [row._asdict() for row in rows]
                    for body in bodies:
                        del body["id"]  # the broker gives its own
                    await self._publish(bodies)
                    await delete_by_ids(connection, QueuedJob.id, [row.id for row in rows])
            published += len(rows)
            if len(rows) < PUBLISH_BATCH:
                return published

    async def _publish_committed(self) -> None:
        await self.publish_due()

    async def _publish_now_and_then(self) -> None:
        """Publish due jobs if the last time was QUEUE_POLL_INTERVAL ago: delayed jobs,
        retries, and rows whose publication after their commit failed."""
        if time.monotonic() - self._published_at < self.publish_interval:
            return
        self._published_at = time.monotonic()
        try:
            await self.publish_due()
        except Exception:
            logger.exception("could not publish the due jobs of the auth database")

    # --- what a worker does -----------------------------------------------------------

    async def reserve(
        self,
        worker_id: int,
        queues: Sequence[str],
        limit: int,
        finished: Sequence[ReservedJob] = (),
    ) -> list[ReservedJob]:
        await self._publish_now_and_then()
        members = Counter(job.batch_id for job in finished if job.batch_id is not None)
        if members:
            # Counted before the jobs are acknowledged: a crash in between counts them
            # again when they run again, and a batch may then finish early, never late.
            async with self._begin() as connection:
                final = await batches.settle(connection, members, {})
                await statements.insert_jobs(connection, final)
            if final:
                await self.publish_due()
        return await self._take(worker_id, queues, limit, finished)

    async def retry_later(self, worker_id: int, job: ReservedJob, available_at: datetime) -> None:
        if not await self._holds(worker_id, job):
            return  # no longer this worker's: whoever holds it decides
        async with self._begin() as connection:
            message = message_of(job, available_at)
            await statements.insert_jobs(connection, [message], attempts=job.attempts)
        await self._take(worker_id, (), 0, [job])

    async def fail(self, worker_id: int, job: ReservedJob, exception: str) -> None:
        if not await self._holds(worker_id, job):
            return
        async with self._begin() as connection:
            await failures.record(connection, job, exception)
            final = []
            if job.batch_id is not None:
                final = await batches.settle(connection, {}, {job.batch_id: 1})
                await statements.insert_jobs(connection, final)
        await self._take(worker_id, (), 0, [job])
        if final:
            await self.publish_due()

    async def release(self, worker_id: int, jobs: Sequence[ReservedJob]) -> None:
        if jobs:
            await self._give_back(worker_id, jobs)

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
        await self._drop_worker(worker_id)
        async with self._begin() as connection:
            await workers.forget(connection, worker_id)

    async def recover(self, stale_before: datetime) -> int:
        async with self.auth.autocommit() as connection:
            stale = await workers.any_stale(connection, stale_before)
        dead = []
        if stale:
            async with self._begin() as connection:
                dead = await workers.forget_stale(connection, stale_before)
        return await self._recover(dead)

    async def _registered(self) -> set[int]:
        async with self.auth.autocommit() as connection:
            return await workers.registered_ids(connection)

    # --- what people look at ----------------------------------------------------------

    async def counts(self) -> list[QueueCounts]:
        """Ready: in the broker, or staged and due; delayed: staged for later; running:
        held by workers. The places are read one after the other, each of the auth
        database's twice (before and after the broker's), so that a job moving from one
        to the other meanwhile may be counted twice, but is never missed."""
        staged = await self._staged()
        running = await self._running()
        ready = await self._ready({queue for queue, _ready, _delayed in staged})
        running_after = {job.id: job for job in await self._running()}
        staged += await self._staged()
        by_queue: dict[str, QueueCounts] = {}

        def of(queue: str) -> QueueCounts:
            return by_queue.setdefault(queue, QueueCounts(queue))

        for queue, due, later in staged:
            counts = of(queue)
            counts.ready, counts.delayed = max(counts.ready, due), max(counts.delayed, later)
        for queue, count in ready.items():
            of(queue).ready += count
        for job in ({job.id: job for job in running} | running_after).values():
            of(job.queue).running += 1
        return [
            counts
            for counts in by_queue.values()
            if counts.ready or counts.delayed or counts.running
        ]

    async def _staged(self) -> list[tuple[str, int, int]]:
        """Per queue: the staged jobs that are due, and those for later."""
        due = QueuedJob.available_at <= utc_now()
        query = (
            select(
                QueuedJob.queue,
                func.sum(case((due, 1), else_=0)),
                func.sum(case((due, 0), else_=1)),
            )
            .where(QueuedJob.worker_id.is_(None))
            .group_by(QueuedJob.queue)
        )
        async with self.auth.autocommit() as connection:
            rows = (await connection.execute(query)).all()
        return [(queue, int(due), int(later)) for queue, due, later in rows]

    async def running(self, limit: int) -> list[RunningJob]:
        held = await self._running()
        now = utc_now()
        held.sort(key=lambda job: (job.reserved_at or now, job.id))
        return held[:limit]

    async def workers(self) -> list[RegisteredWorker]:
        async with self.auth.autocommit() as connection:
            return list(await workers.listing(connection))
