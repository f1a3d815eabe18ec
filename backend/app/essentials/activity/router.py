"""/api/v1/activity: the whole activity log, for holders of `activity:read`.

The essentials cannot import `app.auth`, so the router is built by `create_router`
with the dependency that lets the right callers through, handed over by `app/main.py`.
A user's own activity is at `/api/v1/users/me/activity` (`app.users`).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from app.core.db.sessions import AuthDb
from app.core.db.types import MAX_ID, parse_id
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.essentials.activity import service
from app.essentials.activity.schemas import ActivityRead

TAG = {
    "name": "activity",
    "description": "The activity log, for holders of `activity:read`: who changed what "
    "(old and new values of the columns that changed), sign-ins, API keys. Lives in the "
    "**auth database**; app-database changes reach it through the outbox.",
}

# Subject types, log names and events are identifiers (`projects`, `sign_in_failed`).
Name = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
RowId = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def before_id_of(cursor: str | None) -> int | None:
    return decode_cursor(cursor, parse_id)[0] if cursor else None


def page_of_entries(rows: Any, limit: int) -> Page[ActivityRead]:
    return page_of(rows, limit, ActivityRead.model_validate, lambda row: row.id)


def create_router(guard: Callable[..., Awaitable[Any]]) -> APIRouter:
    """The activity endpoints, each behind `guard` (a permission check)."""
    router = APIRouter(
        prefix="/activity",
        tags=[TAG["name"]],
        dependencies=[Depends(guard)],
        responses=errors(401, 403),
    )

    @router.get("", responses=errors(400, 422))
    async def list_activity(
        *,
        auth_db: AuthDb,
        subject_type: Name = None,
        subject_id: RowId = None,
        causer_id: RowId = None,
        log_name: Name = None,
        event: Name = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> Page[ActivityRead]:
        """Entries, newest first, a page at a time; each filter narrows them."""
        filters = service.Filters(subject_type, subject_id, causer_id, log_name, event)
        rows = await service.page(auth_db, filters, limit=limit + 1, before_id=before_id_of(cursor))
        return page_of_entries(rows, limit)

    return router
