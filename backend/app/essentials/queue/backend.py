"""The seam between the queue and where its jobs wait: `QueueBackend`.

A backend is the transport: it stores jobs, hands them to workers, takes them back
when a worker dies, and keeps what a worker needs to know who is alive. The
`database` backend (`app.essentials.queue.database`) does all of it in the auth
database. A broker backend (Redis, RabbitMQ) implements the same protocol on its
broker, and keeps using the auth database for what people look at and what must be
counted exactly: `failed_jobs` (`app.essentials.queue.failures`) and `job_batches`
(`app.essentials.queue.batches`) take a connection of the auth database, and a
backend calls them with one. The `Queue`, the worker, the CLI, the admin page and
the contract tests (`tests/test_queue.py`) only ever talk to this protocol.

`push_within` is the transactional dispatch: the database backend writes the job in
the caller's auth transaction; a broker backend, which cannot join it, must stage
the message there (an outbox row) and publish it once committed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.core.db.base import AuthSession
from app.essentials.queue.jobs import JobMessage


class WorkerGone(LookupError):
    """The worker was presumed dead (its heartbeat went stale) and forgotten; the jobs
    it held were made available again. It must register anew before it claims."""


@dataclass(frozen=True, slots=True)
class ReservedJob:
    """A job claimed by a worker; `attempts` counts this attempt. Options are kept as
    stored (`backoff` as JSON) until a failure needs them."""

    id: int
    uuid: str
    name: str
    queue: str
    payload: str
    attempts: int
    max_attempts: int
    backoff: str
    timeout: float | None
    batch_id: int | None


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    hostname: str
    pid: int
    queues: Sequence[str]
    concurrency: int


@dataclass(frozen=True, slots=True)
class RegisteredWorker:
    id: int
    hostname: str
    pid: int
    queues: str
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class RunningJob:
    id: int
    uuid: str
    name: str
    queue: str
    attempts: int
    max_attempts: int
    reserved_at: datetime | None
    worker_id: int


@dataclass(slots=True)
class QueueCounts:
    """A queue's jobs by state: ready to run, waiting for their time, running, failed."""

    queue: str
    ready: int = 0
    delayed: int = 0
    running: int = 0
    failed: int = 0


class QueueBackend(Protocol):
    """Where jobs wait, and how workers take them. Every method may raise a database
    or broker error; the worker retries what it must."""

    async def push(self, messages: Sequence[JobMessage]) -> None:
        """Enqueue `messages` now (in a transaction of their own)."""

    async def push_within(self, auth_db: AuthSession, messages: Sequence[JobMessage]) -> None:
        """Enqueue `messages` if and only if `auth_db`'s transaction commits."""

    async def reserve(
        self,
        worker_id: int,
        queues: Sequence[str],
        limit: int,
        finished: Sequence[ReservedJob] = (),
    ) -> list[ReservedJob]:
        """Mark `finished` jobs done (their batches counted), then claim up to `limit`
        ready jobs for `worker_id`, `queues` in order of priority, each with one more
        attempt counted; nothing for a worker that was forgotten (presumed dead)."""

    async def retry_later(self, worker_id: int, job: ReservedJob, available_at: datetime) -> None:
        """Hand a failed attempt back, to be claimed again from `available_at`."""

    async def fail(self, worker_id: int, job: ReservedJob, exception: str) -> None:
        """Move a job to `failed_jobs` for good (and count it in its batch)."""

    async def release(self, worker_id: int, jobs: Sequence[ReservedJob]) -> None:
        """Hand back jobs a stopping worker did not finish; their attempt is refunded."""

    async def register(self, worker: WorkerInfo) -> int:
        """Record a starting worker; returns its id."""

    async def heartbeat(self, worker_id: int) -> None:
        """Record that the worker is alive; `WorkerGone` if it was presumed dead."""

    async def deregister(self, worker_id: int) -> None:
        """Forget a stopping worker (or one presumed dead, going on under a new id);
        jobs it still holds become available."""

    async def recover(self, stale_before: datetime) -> int:
        """Make the jobs of workers silent since `stale_before` available again and
        forget those workers; returns how many jobs were recovered."""

    async def counts(self) -> list[QueueCounts]:
        """Ready, delayed and running jobs per queue (`failed` left at 0)."""

    async def running(self, limit: int) -> list[RunningJob]:
        """Jobs being run now, oldest claim first."""

    async def workers(self) -> list[RegisteredWorker]:
        """The workers alive, by id."""

    async def close(self) -> None:
        """Close what the backend opened (a broker's connections)."""
