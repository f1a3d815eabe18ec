"""Orders and their items: tables of the app database."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db.base import AppBase, TimestampMixin
from app.core.db.types import BigIntId
from app.essentials.activity.recording import Auditable, Changes


class OrderStatus(StrEnum):
    PLACED = "placed"
    CANCELLED = "cancelled"


class Order(Auditable, TimestampMixin, AppBase):
    __tablename__ = "orders"
    __activity_log_name__ = "orders"
    __table_args__ = (Index("ix_orders_owner_id_id", "owner_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigInteger)  # a user of the auth database
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.PLACED)
    total: Mapped[Decimal]
    cancelled_at: Mapped[datetime | None]

    items: Mapped[list["OrderItem"]] = relationship(
        back_populates="order", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    def activity_event(self, event: str, changes: Changes) -> str:
        return "placed" if event == "created" else event


class OrderItem(AppBase):
    __tablename__ = "order_items"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    order_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    # RESTRICT: a product that was ordered cannot be deleted (409), only changed.
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("products.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int]
    unit_price: Mapped[Decimal]  # copied at order time: later price changes do not touch it

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")
