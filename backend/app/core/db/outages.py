"""Telling an outage ("the server cannot be reached") from an error in the query itself.

Outages become 503s naming the database and are retried by callers that may; every
other database error is a bug or bad data. Each driver signals an outage its own way.
"""

from asyncpg.exceptions import (
    CannotConnectNowError,
    PostgresConnectionError,
    TooManyConnectionsError,
)
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


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database could not be reached, rather than a bad query."""
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, _OUTAGE_TYPES)
    return isinstance(exc, _OUTAGE_TYPES)


def mark_connect_failures(context: ExceptionContext) -> None:
    """An engine's `handle_error` hook: a driver error raised before any connection
    exists means the server could not be reached; flagging it as a disconnect lets
    `is_outage` see it on every backend."""
    if context.connection is None:
        context.is_disconnect = True
