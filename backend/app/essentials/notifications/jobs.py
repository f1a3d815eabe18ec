"""The jobs that deliver notifications: one user, a chunk of users, an announcement.

Each job writes the rows first, in one auth transaction that ignores a row already
there (its id was chosen at dispatch), then sends the mail: a retry after a failed mail
writes nothing twice and mails again, so mail is sent at least once, rows exactly once.
"""

import logging
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.integrity import integrity_session
from app.essentials.notifications import recipients
from app.essentials.notifications.models import Notification
from app.essentials.notifications.notification import Rendered, recipient_id
from app.essentials.queue.context import JobContext
from app.essentials.queue.jobs import job

logger = logging.getLogger(__name__)

NOTIFICATIONS = cast(Table, Notification.__table__)
# Users per job of an announcement's batch: a few hundred rows in one transaction.
CHUNK = 500


@job("notifications.deliver", max_attempts=5, backoff=(10, 60, 300), timeout=30)
async def deliver_notification(
    ctx: JobContext, *, user_id: int, notification: dict[str, Any]
) -> None:
    """Deliver one notification to one user, through each of its channels."""
    rendered = Rendered.from_arguments(notification)
    await deliver(ctx, rendered, {user_id: rendered.id})


@job("notifications.deliver_to_many", max_attempts=5, backoff=(10, 60, 300), timeout=300)
async def deliver_to_many(
    ctx: JobContext, *, user_ids: list[int], notification: dict[str, Any]
) -> None:
    """Deliver one notification to each of `user_ids` (a chunk of a batch)."""
    rendered = Rendered.from_arguments(notification)
    await deliver(
        ctx, rendered, {user_id: recipient_id(rendered.id, user_id) for user_id in user_ids}
    )


@job("notifications.announce", max_attempts=3, timeout=300)
async def announce(ctx: JobContext, *, notification: dict[str, Any]) -> None:
    """Send a notification to every active user, as a batch of `deliver_to_many` jobs of
    CHUNK users each. Run again, it makes a second batch whose rows are already there."""
    messages = []
    after_id = 0
    while chunk := await recipients.active_ids(ctx.databases.auth, after_id=after_id, limit=CHUNK):
        messages.append(deliver_to_many.message(user_ids=chunk, notification=notification))
        after_id = chunk[-1]
    batch_id = await ctx.queue.batch(messages, name=f"notification {notification['id']}")
    logger.info(
        "notification %s (%s): batch %s of %s jobs",
        notification["id"],
        notification["type"],
        batch_id,
        len(messages),
    )


async def deliver(ctx: JobContext, rendered: Rendered, ids: dict[int, str]) -> None:
    """Write the rows (`ids`: each user's notification id), then mail each user."""
    if rendered.data is not None:
        async with integrity_session(ctx.databases, "auth", "write notifications") as auth_db:
            connection = await auth_db.connection()
            users = await recipients.existing(connection, list(ids))
            rows = [
                {
                    "id": ids[user_id],
                    "type": rendered.type,
                    "user_id": user_id,
                    "data": rendered.data,
                    "read_at": None,
                    "created_at": rendered.created_at,
                }
                for user_id in users
            ]
            await insert_ignoring(connection, rows)
    if rendered.mail is not None:
        for _, email in await recipients.addresses(ctx.databases.auth, list(ids)):
            await ctx.mailer.send(email, rendered.mail.subject, rendered.mail.body)


async def insert_ignoring(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, skipping those whose id is already there."""
    if rows:
        await connection.execute(_insert_ignoring(connection.dialect.name), rows)


def _insert_ignoring(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(NOTIFICATIONS).on_conflict_do_nothing(index_elements=["id"])
    if dialect == "mysql":
        return mysql.insert(NOTIFICATIONS).prefix_with("IGNORE")
    return sqlite.insert(NOTIFICATIONS).on_conflict_do_nothing(index_elements=["id"])
