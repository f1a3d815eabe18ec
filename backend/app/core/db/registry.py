"""The registry of named databases: the only process-wide database state.

`create_databases` builds it once per process (the app's lifespan, a CLI command, a
worker) and it lives on `app.state.databases`. Code names a database by its name;
`Databases.distinct_engines()` is what health, metrics and tracing iterate over.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import DatabaseName, Settings
from app.core.db.engines import create_engine_for
from app.core.db.outages import is_outage
from app.core.errors import DatabaseUnavailable

SHARED = "shared"  # the label of an engine that serves several databases


@dataclass(frozen=True, slots=True)
class Database:
    """One database as the code sees it: its name, engine and session factory."""

    name: DatabaseName
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement commits on its own.

        For the single statements of the hot path (the per-request credential check):
        no BEGIN and COMMIT round trips. Outages become `DatabaseUnavailable`.
        """
        try:
            async with self.engine.connect() as connection:
                yield await connection.execution_options(isolation_level="AUTOCOMMIT")
        except Exception as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(self.name) from exc
            raise


@dataclass(frozen=True, slots=True)
class Databases:
    """Every database of the process, by name."""

    auth: Database
    app: Database

    def __getitem__(self, name: DatabaseName) -> Database:
        return self.auth if name == "auth" else self.app

    def __iter__(self) -> Iterator[Database]:
        yield self.auth
        yield self.app

    @property
    def shared(self) -> bool:
        """True when one engine (and one pool) serves both databases."""
        return self.auth.engine is self.app.engine

    def distinct_engines(self) -> list[tuple[str, AsyncEngine]]:
        """Each engine once, labelled with its database's name, or `shared` when one
        engine serves several (single-URL mode): summing over labels counts nothing twice."""
        owners: dict[int, list[Database]] = {}
        for database in self:
            owners.setdefault(id(database.engine), []).append(database)
        return [
            (group[0].name if len(group) == 1 else SHARED, group[0].engine)
            for group in owners.values()
        ]

    async def dispose(self) -> None:
        for _, engine in self.distinct_engines():
            await engine.dispose()


def create_databases(settings: Settings) -> Databases:
    """Build both engines; when both databases resolve to one URL, one engine serves both."""
    auth_url = settings.resolved_database_url("auth")
    app_url = settings.resolved_database_url("app")
    if auth_url == app_url:
        engine = create_engine_for(
            auth_url, settings, settings.pool_size("auth") + settings.pool_size("app")
        )
        auth_engine = app_engine = engine
    else:
        auth_engine = create_engine_for(auth_url, settings, settings.pool_size("auth"))
        app_engine = create_engine_for(app_url, settings, settings.pool_size("app"))
    return Databases(
        auth=Database("auth", auth_engine, _sessionmaker(auth_engine)),
        app=Database("app", app_engine, _sessionmaker(app_engine)),
    )


def _sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
