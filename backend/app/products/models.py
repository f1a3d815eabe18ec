"""The product catalogue: a table of the app database."""

from decimal import Decimal

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AppBase, TimestampMixin
from app.core.db.types import BigIntId
from app.essentials.activity.recording import Auditable


class Product(Auditable, TimestampMixin, AppBase):
    __tablename__ = "products"
    __activity_log_name__ = "products"
    # Stock moves with every order, by a bulk UPDATE of `stock` alone; the orders placed
    # and cancelled are what the log keeps of it.
    __activity_exclude__ = frozenset({"stock"})
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal]
    stock: Mapped[int]
