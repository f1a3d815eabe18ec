"""Where the CPU of `GET /api/v1/projects` goes: each step alone, one at a time.

Run by bench/run.py (from backend/, with the service's environment) after the load
scenarios. Each step is awaited 2,000 times in a row after 200 unmeasured ones; the
figure is the CPU time of this process per step, so the database's own work is not in
it. The service's steps beside the floor's two queries (bench/floor_app.py's own): the
gap between them is most of the gap between scenario (1) and scenario (4).
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import asyncpg
from app import models  # noqa: F401  (registers every model)
from app.auth.credentials import from_access_token
from app.auth.principals import PrincipalCache
from app.core.config import Settings
from app.core.db.reads import Reads
from app.core.db.registry import create_databases
from app.core.security import decode_token
from app.projects.service import _PAGE, list_page
from starlette.requests import Request

from tools.bench.floor_app import AUTH_QUERY, PROJECTS_QUERY

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
    floor_pools = [
        await asyncpg.create_pool(
            settings.resolved_database_url(name)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False),
            min_size=1,
            max_size=1,
        )
        for name in ("auth", "app")
    ]

    async def checkout() -> None:
        async with databases.auth.autocommit():
            pass

    # The dependency every signed-in route runs: from the worker's memory (the follower
    # keeps it fresh), and as with PRINCIPAL_CACHE=false (token, checkout, one statement).
    remembered = PrincipalCache()
    unremembered = PrincipalCache(enabled=False)

    async def credential_from_memory() -> None:
        remembered.fresh_until = time.monotonic() + 60
        await from_access_token(databases.auth, remembered, settings, token)

    async def credential_check() -> None:
        await from_access_token(databases.auth, unremembered, settings, token)

    parameters = {"owner_id": user_id, "limit": 21}

    async def projects_page_on_a_session() -> None:
        # How the page was read before `Reads`: the same statement, on a session.
        async with databases.app.sessions() as session:
            (await session.execute(_PAGE, parameters)).all()
            await session.commit()

    a_get = Request({"type": "http", "method": "GET", "headers": [], "state": {}})

    async def projects_page() -> None:
        await list_page(Reads(databases.app, a_get), user_id, limit=21, before_id=None)

    async def jwt() -> None:
        decode_token(settings, token, "access")

    async def floor_pair() -> None:
        auth_pool, app_pool = floor_pools
        async with auth_pool.acquire() as connection:
            await connection.fetch(AUTH_QUERY, user_id, session_id)
        async with app_pool.acquire() as connection:
            await connection.fetch(PROJECTS_QUERY, user_id, 21)

    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("service: connection checkout (liveness check)", checkout),
        ("service: the credential check from memory (token, lookup)", credential_from_memory),
        ("service: the credential check from the database", credential_check),
        ("service: the projects page, Core rows on a session", projects_page_on_a_session),
        ("service: the projects page, Core rows on `AppReads`", projects_page),
        ("service: access token decoded and checked", jwt),
        ("floor: both queries, each on an asyncpg pool", floor_pair),
    ]
    print(f"\n| {'step (CPU of this process per call)':<60}| {'us':>7} |")
    print(f"|{'-' * 61}|{'-' * 9}|")
    try:
        for label, step in steps:
            print(f"| {label:<60}| {await cpu_per_call(step):>7.0f} |")
    finally:
        for pool in floor_pools:
            await pool.close()
        await databases.dispose()


if __name__ == "__main__":
    asyncio.run(main())
