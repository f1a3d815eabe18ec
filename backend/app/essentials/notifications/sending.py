"""Sending a notification: rendered now, delivered by a job, so no request waits for mail.

    await notify(queue, user.id, Announcement(title, body))        # enqueued at once
    await notify_within(queue, auth_db, user.id, RolesChanged(roles))  # iff auth_db commits
    await notify_staged(outbox, app_db, order.owner_id, OrderPlaced(...))  # iff app_db does

Pick the one that goes with the write the notification is about: a notification of an
auth-database change is enqueued in that change's transaction, one of an app-database
change is staged in the outbox with it, so that it is sent if and only if the change
commits. Each returns the notification's id.
"""

from app.core.db.base import AppSession, AuthSession
from app.essentials.notifications.jobs import announce, deliver_notification
from app.essentials.notifications.notification import Notification, render
from app.essentials.outbox.outbox import Outbox
from app.essentials.queue.queue import Queue


async def notify(queue: Queue, user_id: int, notification: Notification) -> str:
    """Enqueue the delivery now."""
    rendered = render(notification)
    await queue.dispatch(deliver_notification, user_id=user_id, notification=rendered.arguments())
    return rendered.id


async def notify_within(
    queue: Queue, auth_db: AuthSession, user_id: int, notification: Notification
) -> str:
    """Enqueue the delivery in `auth_db`'s transaction."""
    rendered = render(notification)
    await queue.dispatch_within(
        auth_db, deliver_notification, user_id=user_id, notification=rendered.arguments()
    )
    return rendered.id


async def notify_staged(
    outbox: Outbox, app_db: AppSession, user_id: int, notification: Notification
) -> str:
    """Stage the delivery in `app_db`'s transaction, through the outbox."""
    rendered = render(notification)
    await outbox.stage(
        app_db, deliver_notification.message(user_id=user_id, notification=rendered.arguments())
    )
    return rendered.id


async def notify_everyone(queue: Queue, notification: Notification) -> str:
    """Send `notification` to every active user: a job that enqueues a batch of chunks."""
    rendered = render(notification)
    await queue.dispatch(announce, notification=rendered.arguments())
    return rendered.id
