"""Request parameters every domain shares."""

from typing import Annotated

from fastapi import Path
from pydantic import Field

from app.core.db.types import MAX_ID

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
