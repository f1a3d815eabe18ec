"""Reading the activity log a page at a time, and pruning it."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Select, select

from app.core.db.base import AuthSession
from app.core.db.pruning import prune as prune_rows
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.essentials.activity.models import ActivityEntry


@dataclass(frozen=True, slots=True)
class Filters:
    """What `GET /api/v1/activity` narrows to; None means any."""

    subject_type: str | None = None
    subject_id: int | None = None
    causer_id: int | None = None
    log_name: str | None = None
    event: str | None = None


def _filtered(filters: Filters) -> Select[ActivityEntry]:
    query = select(ActivityEntry)
    for column, value in (
        (ActivityEntry.subject_type, filters.subject_type),
        (ActivityEntry.subject_id, filters.subject_id),
        (ActivityEntry.causer_id, filters.causer_id),
        (ActivityEntry.log_name, filters.log_name),
        (ActivityEntry.event, filters.event),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


async def page(
    auth_db: AuthSession, filters: Filters, *, limit: int, before_id: int | None
) -> Sequence[ActivityEntry]:
    """Newest first (by id: the order entries reached the log), after `before_id`; the
    subject and causer indexes serve those filters in that order."""
    query = _filtered(filters).order_by(ActivityEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(ActivityEntry.id < before_id)
    return list(await auth_db.scalars(query))


async def prune(databases: Databases, days: int) -> int:
    """Delete the entries older than `days` days, a batch per short transaction (a
    table of millions is never locked by one statement); returns how many went. For
    `activity prune` and the scheduler. Ids grow with time, so the walk by primary key
    meets the old entries first."""
    cutoff = utc_now() - timedelta(days=days)
    old = ActivityEntry.created_at < cutoff
    return await prune_rows(databases, "auth", ActivityEntry.id, old, purpose="prune activity log")
