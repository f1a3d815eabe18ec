"""Is a pooled connection still alive? Answered at checkout, mostly without a round trip.

What `pool_pre_ping` buys, a connection the server dropped is never handed to a request,
costs it a `SELECT 1` round trip at every checkout (two per authenticated request).
This check gets the same from what the client already knows:

1. A server that ends a connection (a restart, an immediate shutdown, an admin's kill,
   an idle timeout) closes its socket, usually after a last error message. Asyncio's
   transport sees the close; if the event loop has not processed it yet, the socket is
   readable: an idle connection is never owed data, so anything to read (the message,
   or the end of the stream) means the connection is over. Both are looked at without
   a round trip: the transport's state and a zero-timeout `select()` on its socket.
2. What the socket cannot show (a connection dropped silently by a firewall, a host that
   vanished) is found by a real ping, done only for connections idle longer than
   `PING_AFTER_IDLE` seconds: a connection used a moment ago is known to work.

A dead connection found either way raises `InvalidatePoolError` from the pool's
`checkout` event: SQLAlchemy then discards every connection pooled before now (they
likely died together) and opens a new one; if the server is down, that connect error
becomes the 503 it always was. SQLite has no server: nothing to check.
"""

import asyncio
import logging
import select
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

logger = logging.getLogger(__name__)

PING_AFTER_IDLE = 5.0  # seconds
_CHECKED_IN_AT = "checked_in_at"  # in the pool record's `info`

Probe = Callable[[Any, float], Awaitable[Any]]  # (driver connection, timeout) -> a round trip


def check_liveness_at_checkout(engine: AsyncEngine, ping_timeout: float) -> None:
    """Install the check on `engine`'s pool (PostgreSQL and MariaDB engines); a ping that
    gets no answer within `ping_timeout` seconds counts as failed."""
    driver = engine.dialect.driver
    probe = _SELECT_ONE if driver == "asyncpg" else _MYSQL_PING
    transport_of = _asyncpg_transport if driver == "asyncpg" else _aiomysql_transport

    def on_checkin(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def on_checkout(
        dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any
    ) -> None:
        adapted = cast(AdaptedConnection, dbapi_connection)
        if _closed_by_peer(transport_of(adapted.driver_connection)):
            raise sa_exc.InvalidatePoolError("the server closed the connection")
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        idle = checked_in_at is not None and time.monotonic() - checked_in_at > PING_AFTER_IDLE
        if idle and not _ping(adapted, probe, ping_timeout):
            raise sa_exc.InvalidatePoolError("the connection did not answer a ping")

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


def _closed_by_peer(transport: Any) -> bool:
    if transport is None or transport.is_closing():
        return True
    if transport.get_extra_info("sslcontext") is not None:
        return False  # TLS may carry records of its own; the idle ping covers these
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    readable, _, _ = select.select([sock.fileno()], [], [], 0)
    return bool(readable)


def _asyncpg_transport(driver_connection: Any) -> Any:
    if driver_connection.is_closed():
        return None
    return driver_connection._transport  # asyncpg keeps no public handle on it


def _aiomysql_transport(driver_connection: Any) -> Any:
    writer = driver_connection._writer  # None once aiomysql has closed the connection
    return None if writer is None else writer.transport


def _select_one(driver_connection: Any, timeout: float) -> Awaitable[Any]:
    # A simple-protocol `SELECT 1`: it prepares nothing, so it is safe behind pgbouncer's
    # transaction mode, and takes one round trip (SQLAlchemy's wraps it in a transaction).
    return cast(Awaitable[Any], driver_connection.execute("SELECT 1", timeout=timeout))


def _mysql_ping(driver_connection: Any, timeout: float) -> Awaitable[Any]:
    return asyncio.wait_for(driver_connection.ping(reconnect=False), timeout)


_SELECT_ONE: Probe = _select_one
_MYSQL_PING: Probe = _mysql_ping


def _ping(adapted: AdaptedConnection, probe: Probe, timeout: float) -> bool:
    try:
        adapted.run_async(lambda driver: probe(driver, timeout))
    except Exception:
        logger.debug("ping failed", exc_info=True)
        return False
    return True
