"""`AppReads` and `AuthReads`: the rows a handler reads without a session.

A list served to a GET needs no identity map, no unit of work and no transaction: each
statement runs on an autocommit connection of its own, checked out and returned around
it, and its rows are validated straight into the response schema. That is a third of
the CPU of a session's read (the step table of `make bench` has the figures), so the
hot lists of a service are worth writing this way:

    async def list_projects(*, user: ProjectReader, reads: AppReads) -> Page[ProjectRead]:
        rows = await reads.all(select(Project.id, Project.name).where(...), {...})

The statements stay SQLAlchemy Core. What a session's plain reads do holds here too
(`app.core.db.routing`): a GET's reads go to a fit replica when there is one, unless
the caller wrote a moment ago (read-your-writes); other requests read the primary; an
outage is a 503; a pooled connection the server dropped is replaced and the read run
again. A read sees what is committed: a handler that writes reads through its session.
A replica that fails, or that cancels the read to replay the primary's changes (a hot
standby's "conflict with recovery", past `max_standby_streaming_delay`), is answered by
the primary at once: the read is idempotent. (A session cannot do this for a statement
in the middle of its work; see the README, Read replicas.)
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVarTuple

from fastapi import Depends, Request
from sqlalchemy import Row, Select

from app.core.config import APP, AUTH, DatabaseName
from app.core.db.failures import is_outage, is_transaction_conflict
from app.core.db.registry import Database, Databases
from app.core.db.sessions import (
    DatabaseDependency,
    caller_wrote_lately,
    reads_outside_transactions,
)

Ts = TypeVarTuple("Ts")


class Reads:
    """Read statements on one database, for one request (see the module's docstring)."""

    __slots__ = ("database", "request")

    def __init__(self, database: Database[Any], request: Request) -> None:
        self.database = database
        self.request = request

    async def all(
        self, statement: Select[*Ts], parameters: Mapping[str, Any] | None = None
    ) -> list[Row[*Ts]]:
        """Every row of `statement`."""
        parameters = parameters or {}
        replicas = self.database.replicas
        if replicas is not None and self._may_use_replica():
            replica = replicas.pick()
            if replica is not None:
                try:
                    async with replica.engine.connect() as connection:
                        return list((await connection.execute(statement, parameters)).all())
                except Exception as exc:
                    if is_outage(exc):
                        replica.mark_down(exc)
                    elif not is_transaction_conflict(exc):  # cancelled to replay: up still
                        raise
                    # either way, read the primary at once
        return await self.database.read(statement, parameters)

    def _may_use_replica(self) -> bool:
        request = self.request
        return reads_outside_transactions(request) and not caller_wrote_lately(request)


@dataclass(frozen=True, slots=True)
class DatabaseReads(DatabaseDependency):
    """The dependency `database_reads(name)` makes: `Reads` on the named database."""

    # async: FastAPI would run a plain `def` dependency in a worker thread.
    async def __call__(self, request: Request) -> Reads:
        databases: Databases = request.app.state.databases
        return Reads(databases[self.name], request)


def database_reads(name: DatabaseName) -> DatabaseReads:
    """`Reads` on a database named in the settings, for a dependency alias."""
    return DatabaseReads(name)


get_auth_reads = database_reads(AUTH)
get_app_reads = database_reads(APP)

AuthReads = Annotated[Reads, Depends(get_auth_reads)]
AppReads = Annotated[Reads, Depends(get_app_reads)]
