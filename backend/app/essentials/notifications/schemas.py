"""What the notifications API accepts and returns."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from app.core.web.schemas import RequestBody


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    read: int  # how many were unread until now


class AnnouncementCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"title": "Maintenance", "body": "The shop closes at 22:00 UTC."}]
        }
    )

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]


class AnnouncementQueued(BaseModel):
    id: str  # the announcement's; each user's copy has an id of its own
