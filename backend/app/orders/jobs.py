"""Jobs of the orders domain: the order confirmation mail."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.auth.models import User
from app.essentials.queue.context import JobContext
from app.essentials.queue.jobs import job
from app.orders.models import Order
from app.products.models import Product


@job("orders.send_confirmation", max_attempts=5, backoff=(10, 60, 300), timeout=30)
async def send_order_confirmation(ctx: JobContext, *, order_id: int) -> None:
    """Mail the buyer what they ordered. Staged through the outbox with the order
    itself, so it is sent if and only if the order was placed."""
    async with ctx.databases.app.sessions() as app_db:  # reads only
        order = await app_db.get(Order, order_id, options=[selectinload(Order.items)])
    if order is None:
        return  # erased with its owner since
    products = select(Product.id, Product.name).where(
        Product.id.in_([item.product_id for item in order.items])
    )
    names: dict[int, str] = dict(await ctx.databases.app.read(products, {}))
    buyer = select(User.email).where(User.id == order.owner_id, User.is_active)
    emails = await ctx.databases.auth.read(buyer, {})
    if not emails:
        return
    email = emails[0].email
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
