"""The registry of named databases: the only process-wide database state.

`create_databases` builds it once per process (the app's lifespan, a CLI command, a
worker) from the settings, and it lives on `app.state.databases`. `auth` and `app`
always exist; EXTRA_DATABASES adds more. Health, metrics, tracing and the dev tools
iterate over it, so a new database is one setting, not ten edits.
"""

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.expression import Executable

from app.core.config import APP, AUTH, DatabaseConfig, DatabaseName, Settings
from app.core.db.base import AppSession, AuthSession
from app.core.db.engines import create_engine_for
from app.core.db.failures import is_disconnect, is_outage, is_read_only_refusal
from app.core.db.routing import (
    MemoryStickiness,
    Replica,
    ReplicaSet,
    RoutingSession,
    Stickiness,
)
from app.core.errors import DatabaseReadOnly, DatabaseUnavailable

SHARED = "shared"  # the label of an engine that serves several databases
SESSION_CLASSES: dict[DatabaseName, type[AsyncSession]] = {AUTH: AuthSession, APP: AppSession}


S = TypeVar("S", bound=AsyncSession)


@dataclass(frozen=True, slots=True)
class Database(Generic[S]):
    """One database as the code sees it: its name, engine and session factory (whose
    sessions are `AuthSession`s for `auth`, `AppSession`s for `app`)."""

    name: DatabaseName
    engine: AsyncEngine
    sessions: async_sessionmaker[S]
    read_only: bool = False
    replicas: ReplicaSet | None = None
    # The same pool's connections in autocommit mode: for reads that need no transaction
    # and single statements. Made once: the routing tells binds apart by identity.
    read_engine: AsyncEngine = field(init=False)

    def __post_init__(self) -> None:
        autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        object.__setattr__(self, "read_engine", autocommit)

    async def read(
        self, statement: Executable, parameters: Mapping[str, Any]
    ) -> list[Row[*tuple[Any, ...]]]:
        """The rows of one read statement, on an autocommit connection of its own.

        A pooled connection that dies between checkout and use (the server killed it a
        moment ago, before the close reached us) fails on first use: SQLAlchemy then
        discards the whole pool, and this read, being idempotent, is run once more on a
        new connection, instead of answering 503 while the database is fine.
        """
        for attempt in (1, 2):
            try:
                async with self.autocommit() as connection:
                    return list((await connection.execute(statement, parameters)).all())
            except DatabaseUnavailable as exc:
                if attempt == 2 or exc.__cause__ is None or not is_disconnect(exc.__cause__):
                    raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection on which each statement commits on its own.

        For the single statements of the hot path (the per-request credential check):
        no BEGIN and COMMIT round trips. Outages become `DatabaseUnavailable`.
        """
        try:
            async with self.read_engine.connect() as connection:
                yield connection
        except Exception as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(self.name) from exc
            if is_read_only_refusal(exc):
                raise DatabaseReadOnly(self.name) from exc
            raise


class Databases(Mapping[DatabaseName, "Database[AsyncSession]"]):
    """Every database of the process, by name; `auth` and `app` are always there, typed."""

    def __init__(
        self, databases: Mapping[DatabaseName, Database[Any]], stickiness: Stickiness | None = None
    ) -> None:
        self._databases = dict(databases)
        # Who wrote a moment ago, so that their reads stay on the primary (replicas only);
        # the app replaces it with one every worker shares when it has a cache.
        self.stickiness: Stickiness = stickiness or MemoryStickiness()

    def __getitem__(self, name: DatabaseName) -> Database[AsyncSession]:
        return self._databases[name]

    def __iter__(self) -> Iterator[DatabaseName]:
        return iter(self._databases)

    def __len__(self) -> int:
        return len(self._databases)

    @property
    def auth(self) -> Database[AuthSession]:
        database: Database[AuthSession] = self._databases[AUTH]
        return database

    @property
    def app(self) -> Database[AppSession]:
        database: Database[AppSession] = self._databases[APP]
        return database

    @property
    def shared(self) -> bool:
        """True when one engine (and one pool) serves both the auth and the app database."""
        return self.auth.engine is self.app.engine

    def distinct_engines(self) -> list[tuple[str, AsyncEngine]]:
        """Each engine once, labelled with its database's name, or `shared` when one
        engine serves several (single-URL mode): summing over labels counts nothing twice."""
        owners: dict[int, list[Database[Any]]] = {}
        for database in self.values():
            owners.setdefault(id(database.engine), []).append(database)
        return [
            (group[0].name if len(group) == 1 else SHARED, group[0].engine)
            for group in owners.values()
        ]

    def replicas(self) -> list[Replica]:
        """Every replica of every database."""
        return [
            replica
            for database in self.values()
            if database.replicas is not None
            for replica in database.replicas.replicas
        ]

    async def dispose(self) -> None:
        for _, engine in self.distinct_engines():
            await engine.dispose()
        for replica in self.replicas():
            await replica.engine.dispose()


def create_databases(settings: Settings) -> Databases:
    """An engine per configured database; databases that resolve to one URL (and the
    same read-only setting) share one engine, its pool sized for all of them."""
    configs = [settings.database(name) for name in settings.database_names]
    groups: dict[tuple[str, bool], list[DatabaseConfig]] = {}
    for config in configs:
        key = (config.url.render_as_string(hide_password=False), config.read_only)
        groups.setdefault(key, []).append(config)
    databases: dict[DatabaseName, Database[Any]] = {}
    for group in groups.values():
        first = group[0]
        engine = create_engine_for(
            first.url,
            settings,
            sum(config.pool_size for config in group),
            read_only=first.read_only,
        )
        for config in group:
            sessions = async_sessionmaker(
                engine,
                class_=SESSION_CLASSES.get(config.name, AsyncSession),
                expire_on_commit=False,
                autoflush=False,
                sync_session_class=RoutingSession,
            )
            replicas = _replicas(config, settings)
            databases[config.name] = Database(
                config.name, engine, sessions, config.read_only, replicas
            )
    return Databases({name: databases[name] for name in settings.database_names})


def _replicas(config: DatabaseConfig, settings: Settings) -> ReplicaSet | None:
    if not config.replica_urls:
        return None
    return ReplicaSet(
        tuple(
            Replica(
                label=f"{url.host}:{url.port or ''}/{url.database}",
                # A standby refuses writes by itself; read-only says so to our code too.
                engine=create_engine_for(url, settings, config.pool_size, read_only=True),
            )
            for url in config.replica_urls
        )
    )
