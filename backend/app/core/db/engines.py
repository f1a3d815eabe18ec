"""An async engine with the pool, ping and driver settings this service relies on."""

import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from app.core.config import Settings
from app.core.db.failures import mark_connect_failures
from app.core.db.liveness import check_liveness_at_checkout

logger = logging.getLogger(__name__)


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


def create_engine_for(
    url: URL, settings: Settings, pool_size: int, *, read_only: bool = False
) -> AsyncEngine:
    """An async engine with the pool and driver options this service relies on.

    `read_only` has the database itself refuse every write, on every connection: a
    read-only default for PostgreSQL transactions, a read-only session on MariaDB, and
    SQLite's `mode=ro`; `app.core.db.failures.is_read_only_refusal` recognises the refusal.
    """
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        connect_args["timeout"] = settings.db_connect_timeout
        if read_only:
            connect_args["server_settings"] = {"default_transaction_read_only": "on"}
    elif backend == "mysql":
        connect_args["connect_timeout"] = settings.db_connect_timeout
        # Sessions run in UTC so that server-side timestamps agree with ours.
        connect_args["init_command"] = "SET time_zone = '+00:00'" + (
            ", SESSION tx_read_only = 1" if read_only else ""
        )
    elif backend == "sqlite":
        connect_args["timeout"] = settings.db_connect_timeout
        if read_only:
            url = url.set(database=f"file:{url.database}", query={"mode": "ro", "uri": "true"})
        elif url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=settings.db_echo,
        # Parameters hold password hashes and token digests: keep them out of error
        # messages and logs, unless DB_ECHO asks to see every statement.
        hide_parameters=not settings.db_echo,
        poolclass=MeasuredPool,
        # Not SQLAlchemy's pre-ping, a round trip at every checkout: `liveness` finds dead
        # connections without one (and SQLite has no server to lose).
        pool_pre_ping=False,
        pool_size=pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "handle_error", mark_connect_failures)
    if backend != "sqlite":
        check_liveness_at_checkout(engine, ping_timeout=settings.db_connect_timeout)
    else:
        configure, begin = (
            (_configure_sqlite_read_only, _begin_deferred)
            if read_only
            else (_configure_sqlite, _begin_immediate)
        )
        event.listen(engine.sync_engine, "connect", configure)
        event.listen(engine.sync_engine, "begin", begin)
    return engine


def claiming_options(engine: AsyncEngine) -> dict[str, Any]:
    """Execution options for a transaction that claims rows with `FOR UPDATE SKIP LOCKED`
    (a queue's jobs, an outbox's messages): READ COMMITTED on MySQL and MariaDB, whose
    REPEATABLE READ also locks the gaps between index entries, so that an insert waits
    for a claim and two claims deadlock; nothing elsewhere (PostgreSQL's default is
    READ COMMITTED, and SQLite has one writer at a time)."""
    return {"isolation_level": "READ COMMITTED"} if engine.dialect.name == "mysql" else {}


def _configure_sqlite(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is turned off; `_begin_immediate` takes over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _configure_sqlite_read_only(
    dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
) -> None:
    # No journal mode or synchronous setting: on a file opened read-only, changing them
    # is a write, and refused.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_deferred(connection: Connection) -> None:
    # A read-only file takes no write lock; a plain BEGIN still gives one snapshot.
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        connection.exec_driver_sql("BEGIN")


def _begin_immediate(connection: Connection) -> None:
    # Take the write lock when the transaction starts: a transaction that read first
    # and wrote later could otherwise fail at once with "database is locked" when
    # another one wrote in between, instead of waiting out the busy timeout.
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
