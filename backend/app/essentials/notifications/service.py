"""A user's inbox in the auth database, and the prune of what was read long ago.

Every query names the user first, so each one is a range of an index (see `models`).
"""

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from app.core.db.base import AuthSession
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.essentials.notifications.models import Notification

PRUNE_BATCH = 1000

# The sort key of a page's last row, which the next page continues after.
PageKey = tuple[datetime, str]


async def page(
    auth_db: AuthSession, user_id: int, *, unread: bool, limit: int, before: PageKey | None
) -> list[Notification]:
    """Up to `limit` of the user's notifications (only unread ones if `unread`), newest
    first, after `before` (keyset pagination on `(created_at, id)`)."""
    query = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    if unread:
        query = query.where(Notification.read_at.is_(None))
    if before is not None:
        created_at, notification_id = before
        # `created_at <= :t` bounds the index range on every backend; the OR only
        # sorts out the rows of that very instant.
        query = query.where(
            Notification.created_at <= created_at,
            (Notification.created_at < created_at) | (Notification.id < notification_id),
        )
    return list(await auth_db.scalars(query))


async def unread_count(auth_db: AuthSession, user_id: int) -> int:
    query = select(func.count()).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    return int(await auth_db.scalar(query) or 0)


async def get_own(auth_db: AuthSession, user_id: int, notification_id: str) -> Notification | None:
    """The notification, if it is the user's: someone else's is as good as missing."""
    notification = await auth_db.get(Notification, notification_id)
    if notification is None or notification.user_id != user_id:
        return None
    return notification


async def mark_read(auth_db: AuthSession, notification: Notification) -> Notification:
    """Read once: `read_at` keeps the time of the first call."""
    await auth_db.execute(
        update(Notification)
        .where(Notification.id == notification.id, Notification.read_at.is_(None))
        .values(read_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    await auth_db.refresh(notification, ["read_at"])
    return notification


async def mark_all_read(auth_db: AuthSession, user_id: int) -> int:
    """Mark every unread notification of the user read; returns how many."""
    result = await auth_db.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def delete_one(auth_db: AuthSession, notification: Notification) -> None:
    await auth_db.execute(
        delete(Notification)
        .where(Notification.id == notification.id)
        .execution_options(synchronize_session=False)
    )


async def prune(databases: Databases, *, days: int) -> int:
    """Delete the notifications read more than `days` days ago, PRUNE_BATCH per
    transaction (by primary key, found through the `read_at` index), so no statement
    holds many locks for long; unread ones stay however old. Returns how many went.

    Not `app.core.db.pruning.prune`, which walks the primary key: here a random uuid,
    so each batch would scan the table; the `read_at` index holds exactly these rows,
    oldest first, and a row once read is never unread again."""
    if days < 0:
        raise ValueError("days must not be negative")
    cutoff = utc_now() - timedelta(days=days)
    pruned = 0
    while True:
        async with integrity_session(databases, "auth", "prune notifications") as auth_db:
            ids = list(
                await auth_db.scalars(
                    select(Notification.id)
                    .where(Notification.read_at < cutoff)
                    .order_by(Notification.read_at)
                    .limit(PRUNE_BATCH)
                )
            )
            if ids:
                await auth_db.execute(delete(Notification).where(Notification.id.in_(ids)))
        pruned += len(ids)
        if len(ids) < PRUNE_BATCH:
            return pruned
