"""The queue's tables, in the auth database: jobs, failed jobs, batches and workers.

`jobs` holds only the work still to do: a finished job is deleted by its primary key,
so the table stays as small as the backlog and is itself the small table of ready
work that Solid Queue keeps apart (`ready_executions`); a separate table would cost
one more write per job for nothing here. A claimed job carries its worker's id, and
`queue_workers` their heartbeats: the jobs of a worker whose heartbeat went stale are
made available again. One index, `(worker_id, queue, available_at, id)`, serves every
query a worker repeats: the claim (`worker_id IS NULL AND queue = ? AND available_at
<= now ORDER BY available_at, id`), the recovery of a dead worker's jobs
(`worker_id IN (...)`) and the list of running jobs.

As Laravel does, attempts are counted when a job is claimed, so a job that kills its
worker still uses a try, and one that always does ends in `failed_jobs`.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AuthBase
from app.core.db.types import BigIntId, utc_now


class QueuedJob(AuthBase):
    """A job waiting, delayed (`available_at` ahead), or running (`worker_id` set)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(
            "ix_jobs_worker_id_queue_available_at_id", "worker_id", "queue", "available_at", "id"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))
    queue: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)  # the keyword arguments, as JSON
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    backoff: Mapped[str] = mapped_column(String(255))  # seconds before each retry, as JSON
    timeout: Mapped[float | None] = mapped_column(Float)
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    available_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    worker_id: Mapped[int | None] = mapped_column(BigInteger)
    reserved_at: Mapped[datetime | None]


class FailedJob(AuthBase):
    """A job out of attempts, or one no worker can run (unknown name, a payload that
    does not fit): the exception with its traceback, and all it takes to retry it."""

    __tablename__ = "failed_jobs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    queue: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    exception: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    backoff: Mapped[str] = mapped_column(String(255))
    timeout: Mapped[float | None] = mapped_column(Float)
    batch_id: Mapped[int | None] = mapped_column(BigInteger)
    # Pruning old failures (`queue prune-failed`) walks this index.
    failed_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)


class JobBatch(AuthBase):
    """A group of jobs dispatched together. `pending_jobs` and `failed_jobs` change by
    single-statement updates; the worker that brings `pending_jobs` to 0 sets
    `finished_at` with a guarded update and dispatches `then_job` in that transaction,
    so the final job is dispatched exactly once."""

    __tablename__ = "job_batches"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    total_jobs: Mapped[int] = mapped_column(Integer)
    pending_jobs: Mapped[int] = mapped_column(Integer)
    failed_jobs: Mapped[int] = mapped_column(Integer, default=0)
    then_job: Mapped[str | None] = mapped_column(Text)  # the final job's message, as JSON
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]


class QueueWorker(AuthBase):
    """A running worker process; any worker deletes one whose heartbeat is stale and
    makes its jobs available again."""

    __tablename__ = "queue_workers"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[str] = mapped_column(String(255))
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
