"""`Outbox`: stage a message with an app-database write, relay it to the auth database.

    await outbox.stage(app_db, deliver_notification.message(user_id=7, notification=...))

`stage` writes the message into `outbox_messages` in `app_db`'s transaction: it
exists if and only if the change it goes with commits. The relay then delivers it:

1. in the app database, it takes the messages (`FOR UPDATE SKIP LOCKED`, so relays
   running at once in several workers share the work instead of fighting);
2. in one auth transaction, it skips those that already have a receipt, hands the
   others to the handler of their kind (the queue's, for jobs: the job row is
   written in this transaction) and writes their receipts; it commits;
3. it deletes the messages in the app database, and commits.

A crash before 2 commits leaves the messages for the next relay; a crash between 2
and 3 leaves messages whose receipts exist, which the next relay deletes without
delivering them again. Delivery is thus at least once, and deduplicated by uuid.

The relay runs right after the staging transaction commits (`on_commit`), and every
worker runs `relay_pending` periodically for what is older than OUTBOX_RELAY_DELAY
(a relay that failed, a process that died). On SQLite, where a transaction holds
the whole database file, step 1 commits at once instead of holding its lock over
step 2: with both databases in one file, it would otherwise wait on itself; the
auth transactions, serialised by BEGIN IMMEDIATE, still see each other's receipts.
"""

import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Connection, Row, delete, insert, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.db.base import AppSession, AuthSession
from app.core.db.engines import claiming_options
from app.core.db.integrity import integrity_session
from app.core.db.queries import delete_by_ids
from app.core.db.registry import Databases
from app.core.db.sessions import on_commit
from app.core.db.types import utc_now
from app.essentials.outbox.models import OutboxMessage, OutboxReceipt

logger = logging.getLogger(__name__)

# Delivers messages of one kind within the relay's auth transaction.
Handler = Callable[[AuthSession, Sequence[Mapping[str, Any]]], Awaitable[None]]

_STAGED = "outbox_staged"  # the key, in `session.info`, of the messages to relay on commit
RELAY_BATCH = 100
PRUNE_BATCH = 1000


class Staged(Protocol):
    """What can be staged: a message with a kind, a uuid and a JSON payload."""

    @property
    def kind(self) -> str: ...

    @property
    def uuid(self) -> str: ...

    def payload(self) -> dict[str, Any]: ...


def write_message(connection: Connection, message: Staged) -> int:
    """Insert `message` into `outbox_messages` through `connection`; returns its id.

    Without `Outbox.stage`'s relay on commit (a session with no outbox at hand, such as
    a job's or a command's), the workers' periodic relay moves it OUTBOX_RELAY_DELAY
    seconds later."""
    written = connection.execute(
        insert(OutboxMessage)
        .returning(OutboxMessage.id)
        .values(
            uuid=message.uuid,
            kind=message.kind,
            payload=json.dumps(message.payload()),
            created_at=utc_now(),
        )
    )
    message_id: int = written.scalar_one()
    return message_id


class Outbox:
    def __init__(
        self, databases: Databases, settings: Settings, handlers: Mapping[str, Handler]
    ) -> None:
        self.databases = databases
        self.settings = settings
        self.handlers = dict(handlers)
        self._hold_locks = databases.app.engine.dialect.name != "sqlite"
        self._claiming = claiming_options(databases.app.engine)

    async def stage(self, app_db: AppSession, message: Staged) -> None:
        """Write `message` in `app_db`'s transaction; relayed once it commits."""
        await app_db.run_sync(self.stage_in_flush, message)

    def stage_in_flush(self, session: Session, message: Staged) -> None:
        """`stage` for code that cannot await, such as a session event during a flush:
        the row is written with the session's own connection, in its transaction."""
        message_id = write_message(session.connection(), message)
        current = session.get_transaction()
        staged: tuple[object, list[int]] | None = session.info.get(_STAGED)
        if staged is None or staged[0] is not current:
            # The first message of this transaction: relay them all once it commits.
            staged = session.info[_STAGED] = (current, [])
            on_commit(session, partial(self._relay_staged, staged[1]))
        staged[1].append(message_id)

    async def _relay_staged(self, ids: list[int]) -> None:
        await self.relay(ids)

    async def relay(self, ids: Sequence[int] | None = None, *, older_than: float = 0) -> int:
        """Relay up to RELAY_BATCH messages: those of `ids`, or else those staged more
        than `older_than` seconds ago, oldest first. Returns how many it took."""
        query = (
            select(OutboxMessage.id, OutboxMessage.uuid, OutboxMessage.kind, OutboxMessage.payload)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
            .limit(RELAY_BATCH)
            .with_for_update(skip_locked=True)
        )
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(ids))
        else:
            cutoff = utc_now() - timedelta(seconds=older_than)
            query = query.where(OutboxMessage.created_at <= cutoff)
        async with integrity_session(self.databases, "app", "outbox relay") as app_db:
            await app_db.connection(execution_options=self._claiming)
            rows = (await app_db.execute(query)).all()
            if not rows:
                return 0
            if not self._hold_locks:
                await app_db.commit()
            done = await self._deliver(rows)
            await delete_by_ids(await app_db.connection(), OutboxMessage.id, done)
        return len(rows)

    async def relay_pending(self) -> int:
        """Relay every message older than OUTBOX_RELAY_DELAY (a worker's chore)."""
        relayed = 0
        while True:
            taken = await self.relay(older_than=self.settings.outbox_relay_delay)
            relayed += taken
            if taken < RELAY_BATCH:
                return relayed

    async def _deliver(self, rows: Sequence[Row[int, str, str, str]]) -> list[int]:
        """Deliver what has no receipt yet; returns the ids whose rows may go."""
        async with integrity_session(self.databases, "auth", "outbox delivery") as auth_db:
            received = set(
                await auth_db.scalars(
                    select(OutboxReceipt.uuid).where(
                        OutboxReceipt.uuid.in_([row.uuid for row in rows])
                    )
                )
            )
            by_kind: dict[str, list[Row[int, str, str, str]]] = defaultdict(list)
            for row in rows:
                if row.uuid not in received:
                    by_kind[row.kind].append(row)
            done = [row.id for row in rows if row.uuid in received]
            delivered: list[Row[int, str, str, str]] = []
            for kind, group in by_kind.items():
                handler = self.handlers.get(kind)
                if handler is None:
                    logger.error("no handler for outbox kind %r: %s wait", kind, len(group))
                    continue
                await handler(auth_db, [json.loads(row.payload) for row in group])
                delivered += group
            if delivered:
                now = utc_now()
                await auth_db.execute(
                    insert(OutboxReceipt),
                    [{"uuid": row.uuid, "kind": row.kind, "received_at": now} for row in delivered],
                )
        return done + [row.id for row in delivered]

    async def prune_receipts(self) -> int:
        """Delete receipts older than OUTBOX_RECEIPT_RETENTION_DAYS, in batches by
        primary key; returns how many. Messages are relayed within seconds, so a
        receipt that old can no longer stop a duplicate."""
        cutoff = utc_now() - timedelta(days=self.settings.outbox_receipt_retention_days)
        pruned = 0
        while True:
            prune = integrity_session(self.databases, "auth", "prune outbox receipts")
            async with prune as auth_db:
                uuids = list(
                    await auth_db.scalars(
                        select(OutboxReceipt.uuid)
                        .where(OutboxReceipt.received_at < cutoff)
                        .limit(PRUNE_BATCH)
                    )
                )
                if uuids:
                    await auth_db.execute(
                        delete(OutboxReceipt).where(OutboxReceipt.uuid.in_(uuids))
                    )
            pruned += len(uuids)
            if len(uuids) < PRUNE_BATCH:
                return pruned
