"""The service plus a slow route, served by uvicorn in test_shutdown.py.

`uvicorn --factory tests.slow_app:create_app`: settings come from the environment.
The process prints a line when each engine is disposed, so the test can see that the
lifespan's shutdown ran to the end.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, Query
from sqlalchemy import Engine, event, text

from app.core.db.sessions import DatabasesDep
from app.main import create_app as create_service


def create_app() -> FastAPI:
    app = create_service()
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app):
            for database in (app.state.databases.auth, app.state.databases.app):
                event.listen(
                    database.engine.sync_engine, "engine_disposed", _reporter(database.name)
                )
            yield

    app.router.lifespan_context = lifespan

    @app.get("/slow")
    async def slow(
        *, databases: DatabasesDep, seconds: Annotated[float, Query(le=30)] = 2
    ) -> dict[str, str]:
        """Sleeps, then reads the app database: a request that outlasts SIGTERM."""
        await asyncio.sleep(seconds)
        async with databases.app.autocommit() as connection:
            await connection.execute(text("SELECT 1"))
        return {"status": "finished"}

    return app


def _reporter(name: str) -> Callable[[Engine], None]:
    def report(engine: Engine) -> None:
        print(f"disposed the {name} engine", flush=True)

    return report
