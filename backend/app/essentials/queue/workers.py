"""`queue_workers`: the workers alive and their heartbeats, in the auth database.

Every backend keeps its workers here: a heartbeat is a small write every few seconds,
and `queue status` and the admin page read them the same way whatever carries the
jobs. Functions take a connection in the caller's transaction.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.queries import columns_for, delete_by_ids
from app.core.db.types import utc_now
from app.essentials.queue.backend import RegisteredWorker, WorkerInfo
from app.essentials.queue.models import QueueWorker


async def register(connection: AsyncConnection, worker: WorkerInfo) -> int:
    now = utc_now()
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


async def beat(connection: AsyncConnection, worker_id: int) -> bool:
    """Record a heartbeat; False if the worker was forgotten (presumed dead)."""
    beaten = await connection.execute(
        update(QueueWorker).where(QueueWorker.id == worker_id).values(heartbeat_at=utc_now())
    )
    return beaten.rowcount == 1


async def forget(connection: AsyncConnection, worker_id: int) -> None:
    await connection.execute(delete(QueueWorker).where(QueueWorker.id == worker_id))


async def any_stale(connection: AsyncConnection, stale_before: datetime) -> bool:
    """Whether a worker has been silent since `stale_before`: a plain read, taking no
    lock, so that the recovery every worker runs every heartbeat interval writes (and
    locks) only when there is a worker to forget."""
    stale = select(QueueWorker.id).where(QueueWorker.heartbeat_at < stale_before).limit(1)
    return (await connection.scalar(stale)) is not None


async def forget_stale(connection: AsyncConnection, stale_before: datetime) -> list[int]:
    """Forget the workers silent since `stale_before`; returns their ids."""
    dead = list(
        await connection.scalars(
            select(QueueWorker.id)
            .where(QueueWorker.heartbeat_at < stale_before)
            .with_for_update(skip_locked=True)
        )
    )
    await delete_by_ids(connection, QueueWorker.id, dead)
    return dead


async def registered_ids(connection: AsyncConnection) -> set[int]:
    return set(await connection.scalars(select(QueueWorker.id)))


async def listing(connection: AsyncConnection) -> Sequence[RegisteredWorker]:
    query = select(*columns_for(QueueWorker, RegisteredWorker)).order_by(QueueWorker.id)
    return [RegisteredWorker(**row._asdict()) for row in (await connection.execute(query)).all()]
