"""The outbox's two tables, one in each database.

`outbox_messages` lives in the app database, so that a message is written in the
same transaction as the change it goes with. `outbox_receipts` lives in the auth
database: a receipt is written in the transaction that delivers its message, so a
message relayed twice (the relay died after delivering, before deleting its row) is
recognised by its uuid and delivered once.
"""

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AppBase, AuthBase
from app.core.db.types import BigIntId, utc_now


class OutboxMessage(AppBase):
    """A message waiting to be relayed: `kind` names the handler, `payload` is JSON."""

    __tablename__ = "outbox_messages"
    # The periodic relay takes the oldest messages first: this index serves it.
    __table_args__ = (Index("ix_outbox_messages_created_at_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class OutboxReceipt(AuthBase):
    """The proof that a message was delivered, kept for OUTBOX_RECEIPT_RETENTION_DAYS."""

    __tablename__ = "outbox_receipts"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
