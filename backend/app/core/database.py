"""The two databases: declarative bases, the engine registry and the session dependencies.

A model's base class says which database it lives in: `AuthBase` for the auth
database (users, credentials, sessions...), `AppBase` for the application's own data.
No foreign key crosses the two.
"""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Numeric, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, AdaptedConnection, Connection, Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from app.core.config import DatabaseName, Settings
from app.core.errors import DatabaseUnavailable, is_outage

logger = logging.getLogger(__name__)

# Stable constraint names, identical on PostgreSQL, MySQL/MariaDB and SQLite, so that
# migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    MySQL and SQLite keep no zone, so values are stored as naive UTC there; MySQL
    also gets microsecond precision instead of whole seconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware one (UTC)")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MAX_AMOUNT = Decimal("9999999999.99")  # what NUMERIC(12, 2) holds


class Money(TypeDecorator[Decimal]):
    """An amount with two decimal places, exact on every backend.

    NUMERIC(12, 2) on PostgreSQL and MySQL; SQLite has no exact decimal type, so
    there it is stored as a whole number of cents, never as a float.
    """

    impl = Numeric(12, 2)
    cache_ok = True
    _CENT = Decimal("0.01")

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value).quantize(self._CENT)
        return int(value * 100) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(self._CENT)
        return Decimal(value).quantize(self._CENT)


def utc_now() -> datetime:
    return datetime.now(UTC)


# BIGINT everywhere, but SQLite only auto-increments an INTEGER primary key.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class _Base(DeclarativeBase):
    __abstract__ = True
    type_annotation_map = {datetime: UTCDateTime, Decimal: Money}


class AuthBase(_Base):
    """Base of every table in the auth database."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AppBase(_Base):
    """Base of every table in the app database."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


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
    """The engine registry: the only process-wide database state, kept on `app.state`."""

    auth: Database
    app: Database

    @property
    def shared(self) -> bool:
        """True when one engine (and one pool) serves both databases."""
        return self.auth.engine is self.app.engine

    def __getitem__(self, name: DatabaseName) -> Database:
        return self.auth if name == "auth" else self.app

    async def dispose(self) -> None:
        await self.auth.engine.dispose()
        if not self.shared:
            await self.app.engine.dispose()


class MeasuredPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, also counting the checkouts that found every
    connection busy, how long they waited, and those that timed out: no pool event
    tells. `/metrics` reports the figures."""

    _sqla_logger_namespace = "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"  # log as ever
    waits = 0
    wait_seconds = 0.0
    timeouts = 0

    @property
    def max_overflow(self) -> int:
        return self._max_overflow

    def _do_get(self) -> ConnectionPoolEntry:
        if self.checkedin() or self._max_overflow < 0 or self.overflow() < self._max_overflow:
            return super()._do_get()  # an idle connection, or room to open one: no wait
        started = time.perf_counter()
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            self.timeouts += 1
            raise
        finally:
            self.waits += 1
            self.wait_seconds += time.perf_counter() - started


def create_engine_for(url: URL, settings: Settings, pool_size: int) -> AsyncEngine:
    """An async engine with the pool and driver options this service relies on."""
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["timeout"] = settings.db_connect_timeout
    elif backend == "mysql":
        connect_args["connect_timeout"] = settings.db_connect_timeout
        # Sessions run in UTC so that server-side timestamps agree with ours.
        connect_args["init_command"] = "SET time_zone = '+00:00'"
    elif backend == "sqlite":
        connect_args["timeout"] = settings.db_connect_timeout
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=settings.db_echo,
        # Parameters hold password hashes and token digests: keep them out of error
        # messages and logs, unless DB_ECHO asks to see every statement.
        hide_parameters=not settings.db_echo,
        poolclass=MeasuredPool,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "handle_error", _mark_connect_failures)
    if url.get_driver_name() == "asyncpg":
        engine.dialect.do_ping = _ping_asyncpg  # type: ignore[method-assign]
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _ping_asyncpg(dbapi_connection: DBAPIConnection) -> bool:
    """`pool_pre_ping` for asyncpg in one round trip instead of three.

    SQLAlchemy's asyncpg ping wraps its probe in BEGIN ... ROLLBACK, so that a prepared
    statement cannot land on another server connection behind pgbouncer's transaction
    mode. A simple-protocol `SELECT 1` prepares nothing, so it is just as safe there. The
    ping runs at every checkout, twice per authenticated request: two round trips fewer
    on each database. Any failure of a bare `SELECT 1` means the connection cannot be
    trusted: False tells the pool so, which, as for a disconnect found by SQLAlchemy's
    own ping, discards every connection pooled before now and opens a new one (if the
    server is gone, that connect error becomes a 503).
    """
    adapted = cast(AdaptedConnection, dbapi_connection)  # SQLAlchemy's asyncpg adapter
    try:
        adapted.run_async(lambda driver: driver.execute("SELECT 1"))
    except Exception:
        logger.debug("pre-ping failed", exc_info=True)
        return False
    return True


def _mark_connect_failures(context: ExceptionContext) -> None:
    # A driver error raised before any connection exists means the server could not
    # be reached; flag it as a disconnect so that `is_outage` sees it on every backend.
    if context.connection is None:
        context.is_disconnect = True


def _configure_sqlite(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is turned off; `_begin_immediate` takes over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # Take the write lock when the transaction starts: a transaction that read first
    # and wrote later could otherwise fail at once with "database is locked" when
    # another one wrote in between, instead of waiting out the busy timeout.
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


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


async def init_db(databases: Databases) -> None:
    """Create every table directly, without Alembic: for quick experiments only."""
    import app.models  # noqa: F401  (registers every model on its base)

    async with databases.auth.engine.begin() as connection:
        await connection.run_sync(AuthBase.metadata.create_all)
    async with databases.app.engine.begin() as connection:
        await connection.run_sync(AppBase.metadata.create_all)


def raised_through(session: AsyncSession, exc: BaseException) -> bool:
    """Whether `exc` was raised by an operation on `session`.

    When a request uses both databases, FastAPI hands an error to both session
    dependencies; the traceback tells which session's call actually failed.
    """
    sync_session = session.sync_session
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_locals.get("self") is sync_session:
            return True
        tb = tb.tb_next
    return False


@asynccontextmanager
async def transaction(databases: Databases, name: DatabaseName) -> AsyncIterator[AsyncSession]:
    """A session committed on success and rolled back on error; outages become 503s."""
    async with databases[name].sessions() as session:
        try:
            yield session
        except BaseException as exc:
            await _rollback_quietly(session)
            if is_outage(exc) and raised_through(session, exc):
                raise DatabaseUnavailable(name) from exc
            raise
        try:
            await session.commit()
        except Exception as exc:
            await _rollback_quietly(session)
            if is_outage(exc):
                raise DatabaseUnavailable(name) from exc
            raise


async def _rollback_quietly(session: AsyncSession) -> None:
    try:
        await session.rollback()
    except Exception:  # the connection is already gone; the pool discards it
        logger.debug("rollback failed", exc_info=True)


async def get_auth_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the auth database, committed when the request succeeds."""
    async with transaction(request.app.state.databases, "auth") as session:
        yield session


async def get_app_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A session on the app database, committed when the request succeeds."""
    async with transaction(request.app.state.databases, "app") as session:
        yield session


async def get_databases(request: Request) -> Databases:
    databases: Databases = request.app.state.databases
    return databases


# scope="function": the commit happens before the response is sent, so a failed
# commit is answered with an error instead of a 2xx for a write that was lost.
AuthDb = Annotated[AsyncSession, Depends(get_auth_db, scope="function")]
AppDb = Annotated[AsyncSession, Depends(get_app_db, scope="function")]
DatabasesDep = Annotated[Databases, Depends(get_databases)]
