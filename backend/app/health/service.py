"""Readiness: a short `SELECT 1` on each database, all at once, each with a deadline."""

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.failures import is_outage
from app.core.db.registry import Database, Databases
from app.health.schemas import DatabaseStatus, ReplicaStatus


async def check_database(database: Database[AsyncSession], deadline: float) -> DatabaseStatus:
    started = time.perf_counter()
    error: str | None = None
    try:
        async with asyncio.timeout(deadline):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        error = f"no answer within {deadline:g} s"
    except Exception as exc:
        if not is_outage(exc):
            raise
        # The exception's type only: its text can carry the host or the user name.
        error = type(exc).__name__
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    replicas = (
        None
        if database.replicas is None
        else [
            ReplicaStatus(
                replica=replica.label,
                status=replica.status,
                lag_seconds=replica.lag_seconds,
                error=replica.error,
            )
            for replica in database.replicas.replicas
        ]
    )
    return DatabaseStatus(
        status="down" if error else "up", latency_ms=latency_ms, error=error, replicas=replicas
    )


async def check_databases(databases: Databases, deadline: float) -> dict[str, DatabaseStatus]:
    """Every database of the registry, all at once."""
    statuses = await asyncio.gather(
        *(check_database(database, deadline) for database in databases.values())
    )
    return dict(zip(databases, statuses, strict=True))
