"""The `notifications` table, in the auth database, beside the users it is for.

Each index serves one question, whatever the table's size, because every one starts
with the columns the question fixes:

- `(user_id, created_at, id)`: my notifications, newest first (keyset pages);
- `(user_id, read_at, created_at, id)`: my unread ones, newest first, and their count
  (`read_at IS NULL` is an equality for a B-tree, so the unread rows of a user are one
  contiguous range, already in page order); "read all" updates that same range;
- `(read_at)`: the prune, which takes the rows read before a cutoff in batches.

The same indexes on the three backends: MariaDB has no partial index, and a partial one
on PostgreSQL would save space, not steps. Nothing filters on `data`, which is JSON for
the client only. The user's row going (erasure) takes their notifications with it.
"""

import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.core.db.base import AuthBase

TYPE_LENGTH = 100


class JSONText(TypeDecorator[dict[str, Any]]):
    """A JSON object kept as text: the same column on the three backends (MariaDB's JSON
    is LONGTEXT under another name), and never queried inside."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        return None if value is None else dict(json.loads(value))


class Notification(AuthBase):
    """One notification for one user; its id is a uuid chosen when it was sent, so that
    a delivery run twice writes it once."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_created_at_id", "user_id", "created_at", "id"),
        Index(
            "ix_notifications_user_id_read_at_created_at_id",
            "user_id",
            "read_at",
            "created_at",
            "id",
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(TYPE_LENGTH))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONText)
    read_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime]
