"""The record of occurrences: claim one (insert-or-ignore), read the latest, prune."""

from datetime import datetime, timedelta

from sqlalchemy import Insert, and_, func, or_, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.pruning import prune
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.essentials.schedule.models import ScheduledRun


async def claim(connection: AsyncConnection, task: str, run_at: datetime, job_uuid: str) -> bool:
    """Record the occurrence `run_at` of `task`; False if it already was (by another
    scheduler). A concurrent claim of the same occurrence waits for this transaction."""
    values = {"task": task, "run_at": run_at, "job_uuid": job_uuid, "created_at": utc_now()}
    statement: Insert
    match connection.dialect.name:
        case "postgresql":
            statement = postgresql.insert(ScheduledRun).values(values).on_conflict_do_nothing()
        case "mysql":
            # Row count 0 for a duplicate, with or without CLIENT_FOUND_ROWS.
            statement = mysql.insert(ScheduledRun).values(values).prefix_with("IGNORE")
        case _:
            statement = sqlite.insert(ScheduledRun).values(values).on_conflict_do_nothing()
    result = await connection.execute(statement)
    return result.rowcount == 1


async def latest(connection: AsyncConnection) -> dict[str, datetime]:
    """The latest occurrence recorded of each task, by task name."""
    rows = await connection.execute(
        select(ScheduledRun.task, func.max(ScheduledRun.run_at)).group_by(ScheduledRun.task)
    )
    return {str(task): run_at for task, run_at in rows.all()}


async def prune_runs(databases: Databases, *, days: int) -> int:
    """Delete the occurrences older than `days` days, but never a task's latest: a
    scheduler starting later must still see that its latest occurrence ran."""
    async with databases.auth.autocommit() as connection:
        newest = await latest(connection)
    cutoff = utc_now() - timedelta(days=days)
    older = [
        and_(ScheduledRun.task == task, ScheduledRun.run_at < min(run_at, cutoff))
        for task, run_at in newest.items()
    ]
    if not older:
        return 0
    return await prune(
        databases, "auth", ScheduledRun.id, or_(*older), purpose="prune scheduled runs"
    )
