"""Transactions, and the request dependencies that hand them out: `AuthDb`, `AppDb`.

Reading a handler, you can tell which database each line talks to: it takes `auth_db:
AuthDb` or `app_db: AppDb`, a session committed when the handler returns and rolled
back when it raises. Outages of the database whose call failed become 503s.
"""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, overload

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.datastructures import State

from app.core.config import APP, AUTH, DatabaseName, Settings
from app.core.db.base import AppSession, AuthSession
from app.core.db.failures import is_outage, is_read_only_refusal
from app.core.db.registry import Database, Databases
from app.core.db.routing import ROUTE, ReadRoute, replica_connection
from app.core.errors import DatabaseReadOnly, DatabaseUnavailable, DomainError

logger = logging.getLogger(__name__)

AfterCommit = Callable[[], Awaitable[None]]
READ_PRIMARY = "read_primary"  # request.state: the caller wrote a moment ago
_APP_STATE = "app_state"  # session.info: the state of the app whose request opened it
_AFTER_COMMIT = "after_commit"  # the key of the callbacks in `session.info`


def on_commit(session: AsyncSession | Session, callback: AfterCommit) -> None:
    """Run `callback` once `transaction()` has committed this session's transaction;
    dropped if it rolls back (Django's `transaction.on_commit`).

    For what must only happen once the data is there for everyone to read: invalidating
    a cache (a reader between the write and the commit would otherwise store the old rows
    as the new state), waking a relay. It runs before the request's answer is sent; an
    error in it is logged and does not undo the commit.
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


@overload
def transaction(
    databases: Databases, name: Literal["auth"]
) -> AbstractAsyncContextManager[AuthSession]: ...


@overload
def transaction(
    databases: Databases, name: Literal["app"]
) -> AbstractAsyncContextManager[AppSession]: ...


@overload
def transaction(
    databases: Databases, name: DatabaseName
) -> AbstractAsyncContextManager[AsyncSession]: ...


def transaction(databases: Databases, name: DatabaseName) -> AbstractAsyncContextManager[Any]:
    """A session committed on success and rolled back on error; outages become 503s.
    Its session is an `AuthSession` on `auth`, an `AppSession` on `app`."""
    return _transaction(databases, name)


@asynccontextmanager
async def _transaction(databases: Databases, name: DatabaseName) -> AsyncIterator[AsyncSession]:
    async with databases[name].sessions() as session:
        try:
            yield session
        except BaseException as exc:
            await rollback_quietly(session)
            if raised_through(session, exc):
                if is_outage(exc):
                    raise DatabaseUnavailable(name) from exc
                if is_read_only_refusal(exc):
                    raise DatabaseReadOnly(name) from exc
            raise
        try:
            await session.commit()
        except Exception as exc:
            await rollback_quietly(session)
            if is_outage(exc):
                raise DatabaseUnavailable(name) from exc
            raise
        await run_after_commit(session)


async def rollback_quietly(session: AsyncSession) -> None:
    """Roll back, ignoring a connection that is already gone (the pool discards it)."""
    session.info.pop(_AFTER_COMMIT, None)
    try:
        await session.rollback()
    except Exception:  # the connection is already gone; the pool discards it
        logger.debug("rollback failed", exc_info=True)


async def commit_now(session: AsyncSession) -> None:
    """Commit in the middle of a request, for what must stand even though the request is
    about to fail, and run the after-commit callbacks registered so far."""
    await session.commit()
    await run_after_commit(session)


async def run_after_commit(session: AsyncSession) -> None:
    """Run the callbacks `on_commit` registered on `session`, whose transaction has
    committed. The committed writes stand whatever a callback does: its error is logged,
    and the next callback still runs."""
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        try:
            await callback()
        except DomainError as error:  # expected, such as an outage: no traceback
            logger.warning("an after-commit callback failed: %s", error.detail)
        except Exception:
            logger.exception("an after-commit callback failed")


@dataclass(frozen=True, slots=True)
class DatabaseDependency:
    """A request dependency on the named database; the start-up checks every name."""

    name: DatabaseName


@dataclass(frozen=True, slots=True)
class DatabaseSession(DatabaseDependency):
    """The dependency `database_session(name)` makes: a session on the named database,
    committed when the request succeeds."""

    async def __call__(self, request: Request) -> AsyncIterator[AsyncSession]:
        databases: Databases = request.app.state.databases
        async with AsyncExitStack() as stack:
            route = await _read_route(request, databases[self.name], stack)
            async with transaction(databases, self.name) as session:
                session.info[_APP_STATE] = request.app.state
                if route is not None:
                    session.info[ROUTE] = route
                yield session
            if route is not None and route.wrote:
                await _remember_write(request, databases)


def app_state_of(session: AsyncSession | Session) -> State | None:
    """The state of the app whose request opened `session` (None outside requests): for
    after-commit work that needs one of the app's own services, such as dropping what a
    worker keeps in memory about the rows that changed."""
    state: State | None = session.info.get(_APP_STATE)
    return state


def database_session(name: DatabaseName) -> DatabaseSession:
    """A session on a database named in the settings, for a dependency alias:
    `LegacyDb = Annotated[AsyncSession, Depends(database_session("legacy"), scope="function")]`.

    A name no setting configures stops the start-up (`check_database_names`), naming the
    variable to set, instead of failing at the first request.
    """
    return DatabaseSession(name)


async def _read_route(
    request: Request, database: Database[AsyncSession], stack: AsyncExitStack
) -> ReadRoute | None:
    """How this request's session on `database` routes its statements (None: all of them
    to the primary, in the transaction). GET and HEAD requests read outside a transaction,
    from a replica when there is one; with replicas, every request notes whether it wrote."""
    if reads_outside_transactions(request):
        replicas = database.replicas
        return ReadRoute(
            primary_reads=database.read_engine.sync_engine,
            replica=None if replicas is None else await replica_connection(replicas, stack),
            caller_wrote_lately=lambda: caller_wrote_lately(request),
        )
    return None if database.replicas is None else ReadRoute()


def reads_outside_transactions(request: Request) -> bool:
    """Whether `request` only reads (GET, HEAD): its reads may skip the transaction, and
    go to a replica. `AppDb` sessions and `AppReads` follow this one rule."""
    return request.method in ("GET", "HEAD")


def caller_wrote_lately(request: Request) -> bool:
    """Whether the caller wrote a moment ago, so their reads must stay on the primary."""
    return bool(getattr(request.state, READ_PRIMARY, False))


async def note_caller(request: Request, caller: str) -> None:
    """Tell the databases who calls (a login session or an API key, as a stable string),
    so that a caller who wrote a moment ago reads their own writes from the primary.
    The credential check calls it before any handler reads."""
    databases: Databases = request.app.state.databases
    request.state.caller = caller
    if databases.replicas():
        setattr(request.state, READ_PRIMARY, await databases.stickiness.is_sticky(caller))


async def _remember_write(request: Request, databases: Databases) -> None:
    caller: str | None = getattr(request.state, "caller", None)
    if caller is not None:
        settings: Settings = request.app.state.settings
        await databases.stickiness.mark(caller, settings.replica_sticky_seconds)


get_auth_db = database_session(AUTH)
get_app_db = database_session(APP)


def check_database_names(app: FastAPI, settings: Settings) -> None:
    """Raise `ConfigError` for a database a route's dependency names but no setting
    configures. Run at start-up, once every router is included."""
    for name in sorted(_database_names_used(app)):
        settings.database(name)


def _database_names_used(app: FastAPI) -> set[DatabaseName]:
    pending = [
        context.original_route.dependant
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    ]
    names: set[DatabaseName] = set()
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, DatabaseDependency):
            names.add(dependant.call.name)
        pending.extend(dependant.dependencies)
    return names


async def get_databases(request: Request) -> Databases:
    databases: Databases = request.app.state.databases
    return databases


# scope="function": the commit happens before the response is sent, so a failed
# commit is answered with an error instead of a 2xx for a write that was lost.
AuthDb = Annotated[AuthSession, Depends(get_auth_db, scope="function")]
AppDb = Annotated[AppSession, Depends(get_app_db, scope="function")]
DatabasesDep = Annotated[Databases, Depends(get_databases)]
