"""Jobs for the queue's tests, and the table they record their runs in.

Workers in other processes import `TEST_JOBS` from here (`queue work --jobs
tests.queue_jobs:TEST_JOBS`), so this module imports nothing of the test suite.
"""

import asyncio
import os

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert

from app.core.db.types import UTCDateTime, utc_now
from app.essentials.queue.context import JobContext
from app.essentials.queue.jobs import JobRegistry, job

# In the app database, beside the application's tables: each run of a test job adds a row.
RUNS = Table(
    "queue_test_runs",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("batch_id", BigInteger),
    Column("note", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Quick settings for workers under test: a stale heartbeat is noticed within a second.
FAST = {
    "queue_poll_interval": 0.05,
    "queue_heartbeat_interval": 0.25,
    "queue_heartbeat_timeout": 1.0,
    "queue_shutdown_grace_seconds": 5.0,
}


async def note_run(ctx: JobContext, note: str = "") -> None:
    async with ctx.databases.app.engine.begin() as connection:
        await connection.execute(
            insert(RUNS).values(
                uuid=ctx.uuid,
                name=ctx.name,
                attempt=ctx.attempt,
                batch_id=ctx.batch_id,
                note=note,
                pid=os.getpid(),
                at=utc_now(),
            )
        )


@job("test.record", timeout=10)
async def record(ctx: JobContext, *, note: str = "") -> None:
    """Record that it ran."""
    await note_run(ctx, note)


@job("test.fail", max_attempts=1)
async def fail(ctx: JobContext, *, message: str = "boom") -> None:
    """Record the attempt, then fail."""
    await note_run(ctx, "attempt")
    raise ValueError(message)


@job("test.flaky", backoff=(0.2, 0.4))
async def flaky(ctx: JobContext, *, failures: int) -> None:
    """Fail the first `failures` attempts."""
    await note_run(ctx, "attempt")
    if ctx.attempt <= failures:
        raise RuntimeError(f"attempt {ctx.attempt} fails")


@job("test.sleep", timeout=None)
async def sleep(ctx: JobContext, *, seconds: float) -> None:
    """Record its start, sleep, record its end."""
    await note_run(ctx, "start")
    await asyncio.sleep(seconds)
    await note_run(ctx, "end")


@job("test.block_first", timeout=None)
async def block_first(ctx: JobContext) -> None:
    """Block forever on the first attempt (for a worker to be killed); finish on the next."""
    await note_run(ctx, "started")
    if ctx.attempt == 1:
        await asyncio.sleep(3600)
    await note_run(ctx, "finished")


@job("test.loses_a_cancellation", timeout=0.3, max_attempts=1)
async def loses_a_cancellation(ctx: JobContext) -> None:
    """Loses its first cancellation, as a job sending a Redis command on Python 3.11
    may (app/core/background.py), then sleeps on."""
    await note_run(ctx, "start")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await note_run(ctx, "lost")
    await asyncio.sleep(60)
    await note_run(ctx, "end")


@job("test.spawn")
async def spawn(ctx: JobContext, *, count: int) -> None:
    """Dispatch `count` record jobs from a job."""
    for number in range(count):
        await ctx.queue.dispatch(record, note=f"spawned {number}")


TEST_JOBS = JobRegistry([record, fail, flaky, sleep, block_first, loses_a_cancellation, spawn])
