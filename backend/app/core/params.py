"""Request parameters every domain shares."""

from typing import Annotated

from fastapi import Path
from pydantic import Field

# Ids are BIGINT: a larger number can name no row, and the drivers refuse to send it.
MAX_ID = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


def parse_id(value: object) -> int:
    """An id read back from a cursor or a token: an int within the BIGINT range."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("an id must be an integer")
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError("id out of range")
    return number
