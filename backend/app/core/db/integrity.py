"""`integrity_session`: the transaction of a script, a CLI command or a worker's job.

Requests get their sessions from the dependencies (`AuthDb`, `AppDb`); everything else
that writes opens one of these, which does what the request path does and a little more:

    async with integrity_session(databases, "auth", "revoke expired keys") as auth_db:
        ...                                   # committed on success, rolled back on error

    async for attempt in integrity_session(databases, "app", "rebalance stock"):
        async with attempt as app_db:         # run again if it lost a deadlock
            ...

Either way the purpose, database, duration and outcome are logged (with the request id
when there is one), `on_commit` callbacks run after the commit, an outage becomes the
same `DatabaseUnavailable` requests get, and a write a read-only database refuses the
same `DatabaseReadOnly`. Used as an iterator, a
transaction that lost a deadlock or a serialization conflict runs again, up to
`attempts` times, after a short, growing pause; `async with` runs it once.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, cast, overload

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import DatabaseName
from app.core.db.base import AppSession, AuthSession
from app.core.db.failures import is_outage, is_read_only_refusal, is_transaction_conflict
from app.core.db.registry import Databases
from app.core.db.sessions import rollback_quietly, run_after_commit
from app.core.errors import DatabaseReadOnly, DatabaseUnavailable

logger = logging.getLogger(__name__)

RETRY_PAUSE = 0.05  # seconds before the second attempt; doubled for each one after


S = TypeVar("S", bound=AsyncSession)


@overload
def integrity_session(
    databases: Databases, name: Literal["auth"], purpose: str, *, attempts: int = 3
) -> "IntegritySession[AuthSession]": ...


@overload
def integrity_session(
    databases: Databases, name: Literal["app"], purpose: str, *, attempts: int = 3
) -> "IntegritySession[AppSession]": ...


@overload
def integrity_session(
    databases: Databases, name: DatabaseName, purpose: str, *, attempts: int = 3
) -> "IntegritySession[AsyncSession]": ...


def integrity_session(
    databases: Databases, name: DatabaseName, purpose: str, *, attempts: int = 3
) -> "IntegritySession[Any]":
    """A transaction on the named database for `purpose`; see the module's docstring.
    Its session is an `AuthSession` on `auth`, an `AppSession` on `app`."""
    return IntegritySession(databases, name, purpose, attempts)


@dataclass
class IntegritySession(Generic[S]):
    databases: Databases
    name: DatabaseName
    purpose: str
    attempts: int = 3
    _single: "Attempt[S] | None" = field(default=None, init=False)

    async def __aenter__(self) -> S:
        self._single = Attempt(self, number=1, last=True)
        return await self._single.__aenter__()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        assert self._single is not None
        return await self._single.__aexit__(kind, error, traceback)

    async def __aiter__(self) -> AsyncIterator["Attempt[S]"]:
        for number in range(1, self.attempts + 1):
            attempt = Attempt(self, number=number, last=number == self.attempts)
            yield attempt
            if attempt.succeeded:
                return
            await asyncio.sleep(RETRY_PAUSE * 2 ** (number - 1))


@dataclass
class Attempt(Generic[S]):
    """One run of the transaction: an async context manager yielding its session."""

    owner: IntegritySession[S]
    number: int
    last: bool
    succeeded: bool = False
    _session: S | None = None
    _started: float = 0.0

    async def __aenter__(self) -> S:
        self._started = time.perf_counter()
        # The registry makes `AuthSession`s for auth and `AppSession`s for app, as the
        # overloads of `integrity_session` promise.
        self._session = cast(S, self.owner.databases[self.owner.name].sessions())
        return self._session

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        assert self._session is not None
        session, self._session = self._session, None
        from_commit = False
        try:
            if error is None:
                try:
                    await session.commit()
                except Exception as commit_error:
                    error, from_commit = commit_error, True
            if error is not None:
                await rollback_quietly(session)
        finally:
            await session.close()
        if error is None:
            self.succeeded = True
            self._log("committed")
            await run_after_commit(session)
            return False
        if is_transaction_conflict(error) and not self.last:
            self._log("conflict, run again", logging.WARNING)
            return True  # the iterator runs the transaction again
        if is_outage(error):
            self._log("database unavailable", logging.WARNING)
            raise DatabaseUnavailable(self.owner.name) from error
        if is_read_only_refusal(error):
            self._log("refused: read-only", logging.WARNING)
            raise DatabaseReadOnly(self.owner.name) from error
        self._log(f"rolled back ({type(error).__name__})", logging.WARNING)
        if from_commit:
            raise error  # the body raised nothing: the failed commit is the error
        return False  # the body's own exception goes on as it was

    def _log(self, outcome: str, level: int = logging.INFO) -> None:
        logger.log(
            level,
            "%s on %s: %s",
            self.owner.purpose,
            self.owner.name,
            outcome,
            extra={
                "purpose": self.owner.purpose,
                "database": self.owner.name,
                "outcome": outcome,
                "attempt": self.number,
                "duration_ms": round((time.perf_counter() - self._started) * 1000, 2),
            },
        )
