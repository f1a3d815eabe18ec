"""Tables of the app database's projects domain."""

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AppBase, TimestampMixin
from app.core.db.types import BigIntId
from app.essentials.activity.recording import Auditable


class Project(Auditable, TimestampMixin, AppBase):
    __tablename__ = "projects"
    __activity_log_name__ = "projects"
    # Lists are "this owner's projects, newest first": the index serves that order.
    __table_args__ = (Index("ix_projects_owner_id_id", "owner_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    # A user in the auth database: no foreign key can cross the two databases, so
    # ownership is checked in application code.
    owner_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
