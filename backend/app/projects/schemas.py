"""What the projects API accepts and returns."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter

from app.core.web.schemas import RequestBody

ProjectName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=10_000)]


class ProjectCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Website relaunch", "description": "Landing page and pricing table"}
            ]
        }
    )

    name: ProjectName
    description: Description | None = None


class ProjectUpdate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Landing page done; pricing table next"}]}
    )

    name: ProjectName | None = None
    description: Description | None = None


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


# A page's rows, validated in one call (`rows_page`).
ProjectRows = TypeAdapter(list[ProjectRead])
