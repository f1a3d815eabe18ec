"""Where the CPU of `GET /api/v1/projects` goes: each step alone, one at a time.

Run by bench/run.py (from backend/, with the service's environment) after the load
scenarios. Each step is awaited 2,000 times in a row after 200 unmeasured ones; the
figure is the CPU time of this process per step, so the database's own work is not in
it. The service's steps beside the floor's: the gap between them is the gap between
scenario (1) and scenario (4).
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from app import models  # noqa: F401  (registers every model)
from app.auth.dependencies import _BY_SESSION
from app.core.config import Settings
from app.core.database import create_databases
from app.core.security import decode_token
from app.projects.service import list_page

ROUNDS = 2000


async def cpu_per_call(step: Callable[[], Awaitable[object]]) -> float:
    """Microseconds of this process's CPU per call of `step`."""
    for _ in range(ROUNDS // 10):
        await step()
    started = time.process_time()
    for _ in range(ROUNDS):
        await step()
    return (time.process_time() - started) / ROUNDS * 1e6


async def main() -> None:
    settings = Settings()
    databases = create_databases(settings)
    user_id, session_id = int(os.environ["BENCH_USER_ID"]), int(os.environ["BENCH_SESSION_ID"])
    token = os.environ["BENCH_TOKEN"]
    pool = await asyncpg.create_pool(
        settings.resolved_database_url("app")
        .set(drivername="postgresql")
        .render_as_string(hide_password=False),
        min_size=1,
        max_size=1,
    )

    async def checkout() -> None:
        async with databases.auth.autocommit():
            pass

    async def credential_check() -> None:
        now = datetime.now(UTC)
        async with databases.auth.autocommit() as connection:
            params = {"user_id": user_id, "session_id": session_id, "now": now}
            (await connection.execute(_BY_SESSION, params)).all()

    async def orm_page() -> None:
        async with databases.app.sessions() as session:
            await list_page(session, user_id, limit=21, before_id=None)
            await session.commit()

    async def jwt() -> None:
        decode_token(settings, token, "access")

    async def raw_query() -> None:
        async with pool.acquire() as connection:
            await connection.fetch(
                "SELECT * FROM projects WHERE owner_id = $1 ORDER BY id DESC LIMIT 21", user_id
            )

    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("service: connection checkout with its pre-ping", checkout),
        ("service: the credential check (checkout + one statement)", credential_check),
        ("service: the projects page on an ORM session", orm_page),
        ("service: access token decoded and checked", jwt),
        ("floor: asyncpg pool acquire + the page query", raw_query),
    ]
    print(f"\n| {'step (CPU of this process per call)':<58}| {'us':>7} |")
    print(f"|{'-' * 59}|{'-' * 9}|")
    try:
        for label, step in steps:
            print(f"| {label:<58}| {await cpu_per_call(step):>7.0f} |")
    finally:
        await pool.close()
        await databases.dispose()


if __name__ == "__main__":
    asyncio.run(main())
