"""`activity_log`: one row per recorded change or event, in the auth database."""

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AuthBase
from app.core.db.types import BigIntId, utc_now


class ActivityEntry(AuthBase):
    """What happened (`event`, `description`) to what (`subject_type`, `subject_id`), by
    whom (`causer_id`, a user), with the columns that changed in `properties`: JSON
    `{"old": {...}, "attributes": {...}}`. `uuid` is unique: an entry relayed twice
    from the app database's outbox is written once."""

    __tablename__ = "activity_log"
    # Pages are newest first (id descending) within a subject, a causer, or everything;
    # the time index serves the pruning.
    __table_args__ = (
        Index("ix_activity_log_subject_type_subject_id_id", "subject_type", "subject_id", "id"),
        Index("ix_activity_log_causer_id_id", "causer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    log_name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    causer_id: Mapped[int | None] = mapped_column(BigInteger)
    properties: Mapped[str] = mapped_column(Text)  # JSON, written and read by `recording`
    request_id: Mapped[str | None] = mapped_column(String(128))
    batch_uuid: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
