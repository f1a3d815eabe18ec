"""What the activity endpoints return."""

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class ActivityRead(BaseModel):
    """One entry; `properties` is `{"old": {...}, "attributes": {...}}` for a change
    (only the columns that changed), or what a by-hand entry recorded."""

    model_config = ConfigDict(from_attributes=True)

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

    @field_validator("properties", mode="before")
    @classmethod
    def _stored_as_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value
