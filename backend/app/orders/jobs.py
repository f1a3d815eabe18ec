"""Jobs of the orders domain: the order confirmation mail."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.auth.models import User
from app.core.db.sessions import transaction
from app.essentials.queue.jobs import JobContext, job
from app.orders.models import Order
from app.products.models import Product


@job("orders.send_confirmation", max_attempts=5, backoff=(10, 60, 300), timeout=30)
async def send_order_confirmation(ctx: JobContext, *, order_id: int) -> None:
    """Mail the buyer what they ordered. Staged through the outbox with the order
    itself, so it is sent if and only if the order was placed."""
    async with transaction(ctx.databases, "app") as app_db:
        order = await app_db.get(Order, order_id, options=[selectinload(Order.items)])
        if order is None:
            return  # erased with its owner since
        names = dict(
            (
                await app_db.execute(
                    select(Product.id, Product.name).where(
                        Product.id.in_([item.product_id for item in order.items])
                    )
                )
            ).all()
        )
    async with transaction(ctx.databases, "auth") as auth_db:
        email = await auth_db.scalar(
            select(User.email).where(User.id == order.owner_id, User.is_active)
        )
    if email is None:
        return
    await ctx.mailer.send(email, f"Your order #{order.id}", confirmation(order, names))


def confirmation(order: Order, names: dict[int, str]) -> str:
    lines = [f"Thank you for your order #{order.id}, placed {order.created_at:%Y-%m-%d %H:%M} UTC."]
    lines += [
        f"  {item.quantity} x {names.get(item.product_id, f'product {item.product_id}')}"
        f" at {item.unit_price}"
        for item in order.items
    ]
    lines.append(f"Total: {order.total}")
    return "\n".join(lines)
