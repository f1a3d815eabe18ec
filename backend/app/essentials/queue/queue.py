"""`Queue`: what the application holds to dispatch jobs and to look after them.

    await queue.dispatch(deliver_notification, user_id=7, notification=..., delay=30)
    await queue.dispatch_within(auth_db, send_password_reset, user_id=user.id)
    await queue.batch([send_mail.message(user_id=i) for i in ids], then=report.message())

`dispatch` enqueues at once; `dispatch_within` enqueues in the caller's auth-database
transaction, so the job exists if and only if that transaction commits. Jobs that go
with an app-database write are staged in that write's transaction instead, through
the outbox (`app.essentials.outbox`), which relays them here. Keyword arguments are
the job's own, plus the dispatch options `delay` (seconds or a timedelta), `queue`,
`max_attempts`, `backoff` and `timeout`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.integrity import integrity_session
from app.core.db.pruning import prune
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.essentials.queue import batches, failures
from app.essentials.queue.backend import QueueBackend, QueueCounts, RegisteredWorker, RunningJob
from app.essentials.queue.database import DatabaseBackend
from app.essentials.queue.failures import FailedJobRow
from app.essentials.queue.jobs import Job, JobMessage
from app.essentials.queue.models import FailedJob, JobBatch


@dataclass(frozen=True, slots=True)
class PrunedJobs:
    failed_jobs: int
    job_batches: int

    def __str__(self) -> str:
        return f"{self.failed_jobs} failed jobs, {self.job_batches} finished batches"


class Queue:
    def __init__(self, backend: QueueBackend, databases: Databases) -> None:
        self.backend = backend
        self.databases = databases

    async def close(self) -> None:
        """Close the backend's connections (a broker's; the databases are not its own)."""
        await self.backend.close()

    async def dispatch(self, job: Job[Any], /, **arguments: Any) -> str:
        """Enqueue `job` with `arguments` now; returns the job's uuid."""
        message = job.message(**arguments)
        await self.backend.push([message])
        return message.uuid

    async def dispatch_within(
        self, auth_db: AuthSession, job: Job[Any], /, **arguments: Any
    ) -> str:
        """Enqueue `job` in `auth_db`'s transaction: if it rolls back, there is no job."""
        message = job.message(**arguments)
        await self.backend.push_within(auth_db, [message])
        return message.uuid

    async def batch(
        self, messages: Sequence[JobMessage], *, then: JobMessage | None = None, name: str = ""
    ) -> int:
        """Enqueue `messages` as one batch; `then` is enqueued once every one of them has
        succeeded or failed for good (at once for an empty batch). Returns the batch id,
        which each job sees as `ctx.batch_id`."""
        async with integrity_session(self.databases, "auth", "queue a batch") as auth_db:
            connection = await auth_db.connection()
            batch_id = await batches.create(
                connection, name=name[:200], total=len(messages), then=then
            )
            members = [replace(message, batch_id=batch_id) for message in messages]
            if not members:
                members = await batches.settle(connection, {batch_id: 0}, {})
            await self.backend.push_within(auth_db, members)
        return batch_id

    async def deliver(self, auth_db: AuthSession, payloads: Sequence[Mapping[str, Any]]) -> None:
        """The outbox's handler for staged jobs (kind `job`): enqueue them within the
        relay's auth transaction, which also records their receipts."""
        await self.backend.push_within(
            auth_db, [JobMessage.from_payload(payload) for payload in payloads]
        )

    # --- looking after jobs -----------------------------------------------------------

    async def failed(self, *, limit: int, before_id: int | None = None) -> list[FailedJobRow]:
        """Failed jobs, newest first."""
        async with self.databases.auth.autocommit() as connection:
            return list(await failures.page(connection, limit=limit, before_id=before_id))

    async def running(self, *, limit: int) -> list[RunningJob]:
        return await self.backend.running(limit)

    async def workers(self) -> list[RegisteredWorker]:
        return await self.backend.workers()

    async def status(self) -> list[QueueCounts]:
        """Per queue: ready, delayed, running and failed jobs, by queue name."""
        by_queue = {counts.queue: counts for counts in await self.backend.counts()}
        async with self.databases.auth.autocommit() as connection:
            failed = await failures.count_by_queue(connection)
        for queue, count in failed.items():
            by_queue.setdefault(queue, QueueCounts(queue)).failed = count
        return [by_queue[queue] for queue in sorted(by_queue)]

    async def retry(self, failed_id: int | None) -> int:
        """Enqueue a failed job again (all of them for None), with fresh attempts;
        returns how many. A job of an unfinished batch counts as pending there again."""
        async with integrity_session(self.databases, "auth", "retry failed jobs") as auth_db:
            connection = await auth_db.connection()
            messages = [
                await self._rejoin(connection, message)
                for message in await failures.take(connection, failed_id)
            ]
            await self.backend.push_within(auth_db, messages)
        return len(messages)

    async def _rejoin(self, connection: AsyncConnection, message: JobMessage) -> JobMessage:
        if message.batch_id is None or await batches.reopen(connection, message.batch_id):
            return message
        return replace(message, batch_id=None)

    async def forget(self, failed_id: int) -> bool:
        """Delete a failed job; False if there is none with this id."""
        async with integrity_session(self.databases, "auth", "forget a failed job") as auth_db:
            if await failures.forget(await auth_db.connection(), failed_id):
                return True
        return False

    async def flush(self) -> int:
        """Delete every failed job, a batch per transaction; returns how many."""
        flushed = 0
        while True:
            async with integrity_session(self.databases, "auth", "flush failed jobs") as auth_db:
                deleted = await failures.delete_some(await auth_db.connection())
            flushed += deleted
            if deleted < failures.DELETE_BATCH:
                return flushed

    async def prune_failed(self, *, days: int) -> "PrunedJobs":
        """Delete the failed jobs, and the finished batches, older than `days` days, a
        batch of rows per transaction. A batch finishes after its last job, so a batch
        pruned takes no failed job of its own along with it that would stay."""
        before = utc_now() - timedelta(days=days)
        failed = await prune(
            self.databases,
            "auth",
            FailedJob.id,
            FailedJob.failed_at < before,
            purpose="prune failed jobs",
        )
        finished = await prune(
            self.databases,
            "auth",
            JobBatch.id,
            JobBatch.finished_at < before,
            purpose="prune finished batches",
        )
        return PrunedJobs(failed, finished)

    async def find_batch(self, batch_id: int) -> batches.BatchStatus | None:
        async with self.databases.auth.autocommit() as connection:
            return await batches.get(connection, batch_id)


def create_queue(settings: Settings, databases: Databases) -> Queue:
    """The queue of `QUEUE_BACKEND`: the auth database, Redis or RabbitMQ."""
    return Queue(create_backend(settings, databases), databases)


def create_backend(settings: Settings, databases: Databases) -> QueueBackend:
    # A broker's client library is imported only when it is the one configured: redis-py
    # and aio-pika are a sixth of a worker's start-up.
    if settings.queue_backend == "redis":
        from app.essentials.queue.redis_broker import RedisBackend

        return RedisBackend(databases.auth, settings)
    if settings.queue_backend == "rabbitmq":
        from app.essentials.queue.rabbitmq_broker import RabbitMQBackend

        return RabbitMQBackend(databases.auth, settings)
    return DatabaseBackend(databases.auth)
