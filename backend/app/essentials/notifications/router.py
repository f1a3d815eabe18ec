"""/api/v1/notifications: the caller's own notifications, and announcements for admins.

The essentials cannot import `app.auth`, so the router is built by `create_router`
with the dependencies that authenticate the caller and let announcers through, handed
over by `app/main.py`.
"""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from app.core.db.sessions import AuthDb
from app.core.errors import NotFound
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from app.essentials.notifications import service
from app.essentials.notifications.announcements import Announcement
from app.essentials.notifications.dependencies import Caller
from app.essentials.notifications.models import Notification
from app.essentials.notifications.schemas import (
    AnnouncementCreate,
    AnnouncementQueued,
    MarkedRead,
    NotificationRead,
    UnreadCount,
)
from app.essentials.notifications.sending import notify_everyone
from app.essentials.queue.dependencies import QueueDep

TAG = {
    "name": "notifications",
    "description": "Your notifications, newest first: read them, mark them read, delete "
    "them; someone else's is a 404. Administrators (`notifications:announce`) send an "
    "announcement to every active user. Lives in the **auth database**; delivered by the "
    "queue.",
}

NotificationId = Annotated[uuid.UUID, Path(description="The notification's id (a UUID)")]
UnreadOnly = Annotated[bool, Query(description="Only the unread ones")]


def parse_time(value: object) -> datetime:
    """A cursor's timestamp: ISO 8601 with its offset."""
    if not isinstance(value, str):
        raise TypeError("a time must be a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a time must carry its offset")
    return moment


def parse_uuid(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("an id must be a string")
    return str(uuid.UUID(value))


def page_key(notification: Notification) -> str:
    return encode_cursor(notification.created_at.isoformat(), notification.id)


def create_router(
    caller: Callable[..., Awaitable[Caller]], announcer: Callable[..., Awaitable[Any]]
) -> APIRouter:
    """The notification endpoints: each for the `caller` (an authenticated user), and
    announcements for those `announcer` lets through."""
    router = APIRouter(prefix="/notifications", tags=[TAG["name"]], responses=errors(401))
    User = Annotated[Caller, Depends(caller)]

    async def own_notification(
        notification_id: NotificationId, user: User, auth_db: AuthDb
    ) -> Notification:
        notification = await service.get_own(auth_db, user.id, str(notification_id))
        if notification is None:
            raise NotFound("notification")
        return notification

    Own = Annotated[Notification, Depends(own_notification)]

    @router.get("", responses=errors(400, 422))
    async def list_notifications(
        *,
        user: User,
        auth_db: AuthDb,
        unread: UnreadOnly = False,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Page[NotificationRead]:
        """Your notifications, newest first (only the unread ones with `unread=true`)."""
        before = decode_cursor(cursor, parse_time, parse_uuid) if cursor else None
        rows = await service.page(
            auth_db,
            user.id,
            unread=unread,
            limit=limit + 1,
            before=(before[0], before[1]) if before else None,
        )
        # The sort key has two parts, (created_at, id): `page_of` encodes one.
        shown = rows[:limit]
        return Page(
            items=[NotificationRead.model_validate(row) for row in shown],
            next_cursor=page_key(shown[-1]) if len(rows) > limit else None,
        )

    @router.get("/unread-count")
    async def count_unread(*, user: User, auth_db: AuthDb) -> UnreadCount:
        """How many of your notifications are unread."""
        return UnreadCount(unread=await service.unread_count(auth_db, user.id))

    @router.post("/read-all")
    async def read_all(*, user: User, auth_db: AuthDb) -> MarkedRead:
        """Mark every one of your notifications read."""
        return MarkedRead(read=await service.mark_all_read(auth_db, user.id))

    @router.post("/{notification_id:uuid}/read", responses=errors(404))
    async def read_notification(*, notification: Own, auth_db: AuthDb) -> NotificationRead:
        """Mark it read; again, it keeps the time it was first read."""
        return NotificationRead.model_validate(await service.mark_read(auth_db, notification))

    @router.delete("/{notification_id:uuid}", status_code=204, responses=errors(404))
    async def delete_notification(*, notification: Own, auth_db: AuthDb) -> None:
        await service.delete_one(auth_db, notification)

    @router.post(
        "/announcements",
        status_code=202,
        dependencies=[Depends(announcer)],
        responses=errors(403, 422),
    )
    async def announce(*, body: AnnouncementCreate, queue: QueueDep) -> AnnouncementQueued:
        """Send a notification to every active user (needs `notifications:announce`).
        Answered at once: a batch of jobs delivers it, a chunk of users each."""
        sent = await notify_everyone(queue, Announcement(title=body.title, body=body.body))
        return AnnouncementQueued(id=sent)

    return router
