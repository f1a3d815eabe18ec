"""Transactions, and the request dependencies that hand them out: `AuthDb`, `AppDb`.

Reading a handler, you can tell which database each line talks to: it takes `auth_db:
AuthDb` or `app_db: AppDb`, a session committed when the handler returns and rolled
back when it raises. Outages of the database whose call failed become 503s.
`on_commit` runs work once the transaction has committed (Django's
`transaction.on_commit`), such as telling a cache that rows changed.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import DatabaseName
from app.core.db.outages import is_outage
from app.core.db.registry import Databases
from app.core.errors import DatabaseUnavailable, DomainError

logger = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]
_AFTER_COMMIT = "dualbase.after_commit"  # the key of the callbacks in `session.info`


def on_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` after `transaction()` commits `session`; never if it rolls back.

    Readers that run before the commit still see the old rows: work that tells others
    "these rows changed" (a cache invalidation) belongs after the commit, or a reader in
    between would store the old rows as if they were the new state.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


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
        await _run_after_commit(session)


async def _run_after_commit(session: AsyncSession) -> None:
    """The committed writes stand whatever a callback does: its error is logged, and the
    next callback still runs."""
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        try:
            await callback()
        except DomainError as error:  # expected, such as an outage: no traceback
            logger.warning("an after-commit callback failed: %s", error.detail)
        except Exception:
            logger.exception("an after-commit callback failed")


async def _rollback_quietly(session: AsyncSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)  # what was to follow the commit never will
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
