"""What the activity endpoints return."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.essentials.activity.models import ActivityEntry
from app.essentials.activity.service import properties_of


class ActivityRead(BaseModel):
    """One entry; `properties` is `{"old": {...}, "attributes": {...}}` for a change
    (only the columns that changed), or what a by-hand entry recorded."""

    id: int
    uuid: str
    log_name: str
    description: str
    event: str
    subject_type: str | None
    subject_id: int | None
    causer_id: int | None
    properties: dict[str, Any]
    request_id: str | None
    batch_uuid: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: ActivityEntry) -> "ActivityRead":
        return cls(
            id=entry.id,
            uuid=entry.uuid,
            log_name=entry.log_name,
            description=entry.description,
            event=entry.event,
            subject_type=entry.subject_type,
            subject_id=entry.subject_id,
            causer_id=entry.causer_id,
            properties=properties_of(entry),
            request_id=entry.request_id,
            batch_uuid=entry.batch_uuid,
            created_at=entry.created_at,
        )
