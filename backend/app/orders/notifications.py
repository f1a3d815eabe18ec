"""What the buyer is told about their orders: in the inbox, and by mail."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.essentials.notifications.notification import Mail, Notification


@dataclass(frozen=True)
class OrderLine:
    quantity: int
    product: str
    unit_price: Decimal


@dataclass(frozen=True)
class OrderPlaced(Notification):
    """The order confirmation: its mail lists what was ordered, at which price."""

    type = "orders.placed"
    channels = ("database", "mail")

    order_id: int
    placed_at: datetime
    total: Decimal
    lines: tuple[OrderLine, ...]

    def to_database(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "total": str(self.total)}

    def to_mail(self) -> Mail:
        body = [
            f"Thank you for your order #{self.order_id}, "
            f"placed {self.placed_at:%Y-%m-%d %H:%M} UTC."
        ]
        body += [f"  {line.quantity} x {line.product} at {line.unit_price}" for line in self.lines]
        body.append(f"Total: {self.total}")
        return Mail(f"Your order #{self.order_id}", "\n".join(body))


@dataclass(frozen=True)
class OrderCancelled(Notification):
    type = "orders.cancelled"
    channels = ("database", "mail")

    order_id: int
    total: Decimal

    def to_database(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "total": str(self.total)}

    def to_mail(self) -> Mail:
        return Mail(
            f"Your order #{self.order_id} is cancelled",
            f"Your order #{self.order_id} of {self.total} is cancelled; "
            "the items are back in stock.",
        )
