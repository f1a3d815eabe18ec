"""Statements every domain writes the same way."""

from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession


async def count_rows(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    """How many rows of `model` match every condition of `where`."""
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)
