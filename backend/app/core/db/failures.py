"""What a driver's error means: an outage ("the server cannot be reached"), a write
refused by a read-only database, a transaction that lost a deadlock (worth running
again), or an error in the query itself.

Outages become 503s naming the database and are retried by callers that may; a refused
write becomes a 403 naming the database; every other database error is a bug or bad
data. Each driver says these things its own way.
"""

from asyncpg.exceptions import (
    CannotConnectNowError,
    PostgresConnectionError,
    TooManyConnectionsError,
)
from pymysql.err import OperationalError as MySQLOperationalError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import ExceptionContext

# Raised by the drivers themselves before SQLAlchemy has a connection to wrap.
_OUTAGE_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    sa_exc.TimeoutError,  # the pool had no connection to give within DB_POOL_TIMEOUT
    PostgresConnectionError,
    CannotConnectNowError,
    TooManyConnectionsError,
)


# The MySQL client's "can't connect", "server has gone away", "lost connection": raised by
# aiomysql unwrapped when they happen while SQLAlchemy sets a connection up.
_MYSQL_CONNECTION_LOST = frozenset({2003, 2006, 2013, 2055})


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be reached, rather than a bad query."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, _OUTAGE_TYPES)
    return isinstance(exc, _OUTAGE_TYPES) or _mysql_connection_lost(exc)


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` is a connection that died in use (the pool has been told), as opposed
    to a server that cannot be reached at all: the same work may succeed on a new one."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated
    return _mysql_connection_lost(exc)


def _mysql_connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, MySQLOperationalError) and exc.args[:1] in [
        (code,) for code in _MYSQL_CONNECTION_LOST
    ]


# SQLSTATE 25006, read_only_sql_transaction: PostgreSQL's and MariaDB's refusal of a write
# in a read-only transaction. SQLite opened with mode=ro says SQLITE_READONLY in words.
_READ_ONLY_SQLSTATE = "25006"
_MARIADB_READ_ONLY = 1792
_SQLITE_READ_ONLY = "attempt to write a readonly database"


def is_read_only_refusal(exc: BaseException) -> bool:
    """Whether `exc` is a read-only database refusing a write."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == _READ_ONLY_SQLSTATE:  # asyncpg, through SQLAlchemy
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _MARIADB_READ_ONLY:  # aiomysql: (errno, message)
        return True
    return _SQLITE_READ_ONLY in str(orig)


# Lost a deadlock or a serialization conflict: the same transaction may succeed if run
# again. PostgreSQL's SQLSTATEs; MariaDB's deadlock and lock-wait-timeout errors;
# SQLite's busy database (the busy timeout ran out).
_CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
_MARIADB_CONFLICTS = frozenset({1213, 1205})
_SQLITE_BUSY = "database is locked"


def is_transaction_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a transaction that lost to another one and may be run again."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) in _CONFLICT_SQLSTATES:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in _MARIADB_CONFLICTS:
        return True
    return _SQLITE_BUSY in str(orig)


def mark_connect_failures(context: ExceptionContext) -> None:
    """An engine's `handle_error` hook: a driver error raised before any connection
    exists means the server could not be reached; flagging it as a disconnect lets
    `is_outage` see it on every backend."""
    if context.connection is None:
        context.is_disconnect = True
