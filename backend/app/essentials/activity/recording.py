"""Recording entries: automatically for the models that mix in `Auditable`, and by hand.

    class Project(Auditable, TimestampMixin, AppBase):
        __activity_log_name__ = "projects"

    await activity("auth").on(user).by(user).event("signed_in").log(auth_db, "Signed in")

At every flush, the `after_flush` session event reads SQLAlchemy's own change tracking
(each attribute's history, still there at that point) for the auditable objects the
flush inserted, changed or deleted, and writes one entry each: `created` with the
attributes, `updated` with only the columns that changed, old and new, `deleted` with
the old ones. The causer and the request id come from the request's context
(`app.core.observability.logging`), and every entry of one request shares a batch uuid.

Where the entry goes: an auth-database model's is inserted into `activity_log` with
the flush's own connection, in its transaction. An app-database model's is written to
the app database's `outbox_messages` in the flush's transaction (kind `activity`) and
relayed to `activity_log` once it commits, at least once and deduplicated by the
entry's uuid (`deliver`). Either way a change that rolls back leaves no entry, and one
that commits cannot lose its entry.

Left out by rule, for every model: columns whose name contains password, hash, digest,
secret, token or jti, and `created_at`/`updated_at` (the entry has its own time); a
model adds its own (`__activity_exclude__`). By-hand properties follow the same rule.

Bulk `update()`/`delete()` statements on an auditable table through a session are
refused (`UnrecordedChange`) unless every column they set is left out of the log, or
they say why with an execution option: `BY_HAND` (the code writes the entry next to
the statement) or `UNAUDITED` (deliberately unrecorded, such as an erasure).
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Self
from uuid import uuid4

from sqlalchemy import Table, event, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session, UOWTransaction
from sqlalchemy.orm.base import NO_VALUE

from app.core.db.base import AppBase, AppSession, AuthSession
from app.core.db.sessions import app_state_of
from app.core.db.types import utc_now
from app.core.observability.logging import REQUEST_ID, USER_ID
from app.essentials.activity.models import ActivityEntry
from app.essentials.outbox.outbox import write_message

KIND = "activity"  # the outbox kind of an app-database entry on its way to `activity_log`
SECRET = re.compile(r"password|hash|digest|secret|token|jti", re.IGNORECASE)
NOT_LOGGED = frozenset({"created_at", "updated_at"})

# Execution options of a bulk statement on an auditable table: why it may run.
OPTION = "activity"
BY_HAND = {OPTION: "by_hand"}  # its entry is written by hand, next to the statement
UNAUDITED = {OPTION: "unaudited"}  # deliberately unrecorded (an erasure)

_PAUSED: ContextVar[bool] = ContextVar("activity_paused", default=False)
_BATCH: ContextVar[tuple[str, str] | None] = ContextVar("activity_batch", default=None)


class UnrecordedChange(RuntimeError):
    """A bulk statement would change an auditable table without an entry."""


class Auditable:
    """Mix in to record every insert, change and delete of a model's rows."""

    __activity_log_name__: ClassVar[str] = "default"
    # Columns of this model left out, besides those the rule leaves out for every model.
    __activity_exclude__: ClassVar[frozenset[str]] = frozenset()
    # Collections logged as the sorted list of one attribute of their members.
    __activity_relations__: ClassVar[Mapping[str, str]] = {}

    def activity_event(self, event: str, changes: "Changes") -> str:
        """The event an automatic entry is logged as: `created`, `updated` or `deleted`
        unless the model names it after what happened (an order `cancelled`)."""
        return event


@dataclass(frozen=True, slots=True)
class Changes:
    old: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.old or self.attributes)


def logged(name: str) -> bool:
    """Whether a column (or a by-hand property) of this name may enter the log."""
    return name not in NOT_LOGGED and SECRET.search(name) is None


@contextmanager
def without_logs() -> Iterator[None]:
    """Record nothing automatically within the block (spatie's `withoutLogs`): for
    measuring what auditing costs, or a data migration that says so."""
    token = _PAUSED.set(True)
    try:
        yield
    finally:
        _PAUSED.reset(token)


def subject_type(model: type[Any]) -> str:
    """How entries name a model: its table's name (`projects`)."""
    table: Table = inspect(model).local_table
    return table.name


def row_id(row: object) -> int | None:
    """A row's single integer primary key (None for any other key). Read from the
    row itself: during a flush, a row just inserted has no identity key yet."""
    key = inspect(row).mapper.primary_key_from_instance(row)
    return key[0] if len(key) == 1 and isinstance(key[0], int) else None


def jsonable(value: Any) -> Any:
    """A value as the log stores it: amounts and times as exact strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Mapping):  # by-hand properties: secrets left out at every depth
        return {str(key): jsonable(item) for key, item in value.items() if logged(str(key))}
    return str(value)


def _logged_columns(model: type[Auditable]) -> list[str]:
    return [
        attribute.key
        for attribute in inspect(model).column_attrs
        if logged(attribute.key)
        and all(logged(column.name) for column in attribute.columns)
        and attribute.key not in model.__activity_exclude__
    ]


def _related(members: Iterable[Any], shown: str) -> list[Any]:
    return sorted(jsonable(getattr(member, shown)) for member in members)


def _created(state: InstanceState[Auditable], model: type[Auditable]) -> Changes:
    values = state.dict
    columns = state.mapper.column_attrs
    # A column never set and with no server default was inserted as NULL.
    attributes = {
        key: jsonable(values[key]) if key in values else None
        for key in _logged_columns(model)
        if key in values or columns[key].columns[0].server_default is None
    }
    for key, shown in model.__activity_relations__.items():
        if key in values:
            attributes[key] = _related(values[key], shown)
    return Changes(attributes=attributes)


def _deleted(state: InstanceState[Auditable], model: type[Auditable]) -> Changes:
    return Changes(old=_created(state, model).attributes)


def _updated(state: InstanceState[Auditable], model: type[Auditable]) -> Changes:
    changes = Changes()
    for key in _logged_columns(model):
        history = state.attrs[key].history
        if history.added or history.deleted:
            # The value before the change, if it was loaded: an attribute set while
            # expired has no known old value, and claiming None would be a lie.
            before = state.committed_state.get(key, NO_VALUE)
            if before is not NO_VALUE:
                changes.old[key] = jsonable(before)
            changes.attributes[key] = jsonable(history.added[0]) if history.added else None
    for key, shown in model.__activity_relations__.items():
        history = state.attrs[key].history
        if history.added or history.deleted:
            changes.old[key] = _related([*history.unchanged, *history.deleted], shown)
            changes.attributes[key] = _related([*history.unchanged, *history.added], shown)
    return changes


def _batch_uuid(request_id: str | None) -> str | None:
    """One uuid for every entry of a request."""
    if request_id is None:
        return None
    current = _BATCH.get()
    if current is None or current[0] != request_id:
        current = (request_id, str(uuid4()))
        _BATCH.set(current)
    return current[1]


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry on its way to `activity_log` (and its outbox message, `kind` `activity`)."""

    log_name: str
    description: str
    event: str
    subject_type: str | None
    subject_id: int | None
    causer_id: int | None
    properties: dict[str, Any]
    request_id: str | None
    batch_uuid: str | None
    uuid: str = field(default_factory=lambda: str(uuid4()))
    created_at: datetime = field(default_factory=utc_now)
    kind: ClassVar[str] = KIND

    def payload(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "log_name": self.log_name,
            "description": self.description,
            "event": self.event,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "causer_id": self.causer_id,
            "properties": self.properties,
            "request_id": self.request_id,
            "batch_uuid": self.batch_uuid,
            "created_at": self.created_at.isoformat(),
        }

    def row(self) -> dict[str, Any]:
        """The entry as `activity_log` stores it."""
        row = self.payload()
        row.update(properties=json.dumps(self.properties), created_at=self.created_at)
        return row


def _entry(
    log_name: str,
    event_name: str,
    description: str,
    subject: tuple[str | None, int | None],
    causer_id: int | None,
    properties: dict[str, Any],
) -> Entry:
    request_id = REQUEST_ID.get()
    return Entry(
        log_name=log_name,
        description=description[:255],
        event=event_name,
        subject_type=subject[0],
        subject_id=subject[1],
        causer_id=causer_id,
        properties=properties,
        request_id=request_id,
        batch_uuid=_batch_uuid(request_id),
    )


def _automatic(target: Auditable, event_name: str, changes: Changes) -> Entry:
    model = type(target)
    name = target.activity_event(event_name, changes)
    properties: dict[str, Any] = {}
    if changes.old:
        properties["old"] = changes.old
    if changes.attributes:
        properties["attributes"] = changes.attributes
    return _entry(
        model.__activity_log_name__,
        name,
        name,
        (subject_type(model), row_id(target)),
        USER_ID.get(),
        properties,
    )


def write(session: Session, entries: list[Entry], *, app_database: bool) -> None:
    """Write `entries` in `session`'s transaction: into `activity_log` for the auth
    database, into the outbox (relayed after the commit) for the app database."""
    if not entries:
        return
    if not app_database:
        session.connection().execute(insert(ActivityEntry), [entry.row() for entry in entries])
        return
    outbox = getattr(app_state_of(session), "outbox", None)
    for entry in entries:
        if outbox is not None:  # in a request: relayed as soon as it commits
            outbox.stage_in_flush(session, entry)
        else:  # a job's or a command's session: the workers' periodic relay moves it
            write_message(session.connection(), entry)


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, _flush: UOWTransaction) -> None:
    if _PAUSED.get():
        return
    entries: dict[bool, list[Entry]] = {True: [], False: []}
    for target in session.new:
        if isinstance(target, Auditable):
            changes = _created(inspect(target), type(target))
            entries[isinstance(target, AppBase)].append(_automatic(target, "created", changes))
    for target in session.dirty:
        if isinstance(target, Auditable):
            changes = _updated(inspect(target), type(target))
            if changes:
                entries[isinstance(target, AppBase)].append(_automatic(target, "updated", changes))
    for target in session.deleted:
        if isinstance(target, Auditable):
            changes = _deleted(inspect(target), type(target))
            entries[isinstance(target, AppBase)].append(_automatic(target, "deleted", changes))
    for app_database, group in entries.items():
        write(session, group, app_database=app_database)


def _auditable_tables() -> dict[str, type[Auditable]]:
    tables: dict[str, type[Auditable]] = {}
    pending: list[type[Auditable]] = list(Auditable.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        table = getattr(model, "__table__", None)
        if isinstance(table, Table):
            tables[table.name] = model
    return tables


def _set_columns(statement: Any) -> list[str] | None:
    """The columns an UPDATE sets, when the statement says them."""
    values = statement._values or dict(statement._ordered_values or ())
    if not values:
        return None
    return [key if isinstance(key, str) else str(getattr(key, "key", key)) for key in values]


@event.listens_for(Session, "do_orm_execute")
def _guard_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    statement: Any = state.statement
    model = _auditable_tables().get(getattr(statement.table, "name", ""))
    if model is None or state.execution_options.get(OPTION) in (BY_HAND[OPTION], UNAUDITED[OPTION]):
        return
    if state.is_update:
        columns = _set_columns(statement)
        if columns is not None and not set(columns) & set(_logged_columns(model)):
            return  # it changes only what the log leaves out (the stock of a product)
    raise UnrecordedChange(
        f"A bulk {'UPDATE' if state.is_update else 'DELETE'} on {model.__name__}, whose "
        "changes are audited, would leave no activity entry: change the rows through the "
        "ORM, or write the entry by hand and run it with execution_options(**BY_HAND) "
        "(or **UNAUDITED, if it must stay unrecorded)"
    )


@dataclass(frozen=True, slots=True)
class Activity:
    """An entry written by hand; see `activity`."""

    log_name: str
    subject: tuple[str | None, int | None] = (None, None)
    causer_id: int | None = None
    causer_given: bool = False
    event_name: str = "logged"
    properties: Mapping[str, Any] = field(default_factory=dict)

    def on(self, subject: object, subject_id: int | None = None) -> Self:
        """What the entry is about: a model's row, or a subject type and id."""
        if isinstance(subject, str):
            return replace(self, subject=(subject, subject_id))
        return replace(self, subject=(subject_type(type(subject)), row_id(subject)))

    def by(self, causer: object | None) -> Self:
        """Who did it: a user (or their id); by default the request's user."""
        causer_id = causer if causer is None or isinstance(causer, int) else causer.id  # type: ignore[attr-defined]
        return replace(self, causer_id=causer_id, causer_given=True)

    def event(self, name: str) -> Self:
        return replace(self, event_name=name)

    def with_properties(self, properties: Mapping[str, Any]) -> Self:
        return replace(self, properties={**self.properties, **properties})

    def entry(self, description: str) -> Entry:
        properties: dict[str, Any] = jsonable(self.properties)
        causer_id = self.causer_id if self.causer_given else USER_ID.get()
        return _entry(
            self.log_name, self.event_name, description, self.subject, causer_id, properties
        )

    async def log(self, session: AsyncSession, description: str) -> Entry:
        """Write the entry in `session`'s transaction (see `write`)."""
        entry = self.entry(description)
        if not isinstance(session, AuthSession | AppSession):
            raise TypeError("an activity entry is written through an AuthSession or AppSession")
        app_database = isinstance(session, AppSession)
        await session.run_sync(lambda sync: write(sync, [entry], app_database=app_database))
        return entry


def activity(log_name: str = "default") -> Activity:
    """Start an entry by hand (spatie's `activity()`): `.on(subject)`, `.by(user)`,
    `.event(name)`, `.with_properties({...})`, then `await .log(session, description)`."""
    return Activity(log_name)


async def deliver(auth_db: AsyncSession, payloads: Iterable[Mapping[str, Any]]) -> None:
    """The outbox handler of kind `activity`: write the relayed entries, in the relay's
    auth transaction, skipping those already there (the receipts dedup too)."""
    fresh = {payload["uuid"]: payload for payload in payloads}
    known = set(
        await auth_db.scalars(select(ActivityEntry.uuid).where(ActivityEntry.uuid.in_(fresh)))
    )
    rows = [
        {
            **payload,
            "properties": json.dumps(payload["properties"]),
            "created_at": datetime.fromisoformat(payload["created_at"]),
        }
        for uuid, payload in fresh.items()
        if uuid not in known
    ]
    if rows:  # a Core INSERT: the ORM's bulk path costs more CPU than the round trip
        connection = await auth_db.connection()
        await connection.execute(insert(ActivityEntry.__table__), rows)  # type: ignore[arg-type]
