"""Orders, in the app database: stock is checked and taken in one statement per product.

`UPDATE products SET stock = stock - :n WHERE id = :id AND stock >= :n` either takes
the whole quantity or matches no row; the row lock it holds makes concurrent orders
queue behind it, so stock can never go below zero however many orders race. Taking and
putting back stock changes the catalogue readers see (`catalogue.changed`).
"""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import selectinload

from app.core.db.base import AppSession
from app.core.db.queries import count_rows
from app.core.db.reads import Reads
from app.core.db.types import MAX_AMOUNT
from app.core.errors import Conflict, InvalidData, NotFound
from app.essentials.activity.recording import BY_HAND, activity
from app.essentials.cache.facade import Cache
from app.essentials.notifications.sending import notify_staged
from app.essentials.outbox.outbox import Outbox
from app.orders.models import Order, OrderItem, OrderStatus
from app.orders.notifications import OrderCancelled, OrderLine, OrderPlaced
from app.orders.schemas import OrderCreate
from app.products import catalogue
from app.products.models import Product


async def place(
    app_db: AppSession, cache: Cache, outbox: Outbox, owner_id: int, data: OrderCreate
) -> Order:
    """Take the stock, record the order, and stage the buyer's notification (with the
    confirmation mail) in the same transaction: the outbox relays it to the queue once
    the order is committed."""
    wanted = Counter[int]()
    for line in data.items:
        wanted[line.product_id] += line.quantity
    # Always in id order: two orders for the same products lock them in the same order,
    # so they queue instead of deadlocking.
    for product_id, quantity in sorted(wanted.items()):
        taken = await app_db.execute(
            update(Product)
            .where(Product.id == product_id, Product.stock >= quantity)
            .values(stock=Product.stock - quantity)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            await _refuse(app_db, product_id, quantity)
    catalogue.changed(app_db, cache)
    products = {
        row.id: row
        for row in await app_db.execute(
            select(Product.id, Product.price, Product.name).where(Product.id.in_(wanted))
        )
    }
    items = [
        OrderItem(product_id=product_id, quantity=quantity, unit_price=products[product_id].price)
        for product_id, quantity in sorted(wanted.items())
    ]
    total = sum((item.unit_price * item.quantity for item in items), Decimal("0.00"))
    if total > MAX_AMOUNT:  # raising rolls the stock back too
        raise InvalidData(f"The order total {total} exceeds the largest amount, {MAX_AMOUNT}")
    order = Order(owner_id=owner_id, status=OrderStatus.PLACED, total=total, items=items)
    app_db.add(order)
    await app_db.flush()
    lines = tuple(
        OrderLine(item.quantity, products[item.product_id].name, item.unit_price) for item in items
    )
    placed = OrderPlaced(order.id, order.created_at, total, lines)
    await notify_staged(outbox, app_db, owner_id, placed)
    return order


async def _refuse(app_db: AppSession, product_id: int, quantity: int) -> None:
    product = await app_db.get(Product, product_id)
    if product is None:
        raise NotFound("product", product_id=product_id)
    raise Conflict(
        f"Not enough stock for {product.sku}: {quantity} wanted, {product.stock} left",
        code="insufficient_stock",
        product_id=product_id,
        available=product.stock,
    )


async def get(app_db: AppSession, order_id: int) -> Order | None:
    order: Order | None = await app_db.scalar(
        select(Order).where(Order.id == order_id).options(selectinload(Order.items))
    )
    return order


# What a list shows of an order (`OrderSummary`), read as rows: no entities, no items.
_PAGE = (
    select(Order.id, Order.status, Order.total, Order.created_at)
    .where(Order.owner_id == bindparam("owner_id"))
    .order_by(Order.id.desc())
    .limit(bindparam("limit"))
)
_PAGE_AFTER = _PAGE.where(Order.id < bindparam("before_id"))
PageRow = Row[int, str, Decimal, datetime]


async def list_page(
    reads: Reads, owner_id: int, *, limit: int, before_id: int | None
) -> Sequence[PageRow]:
    """Newest first, served by the (owner_id, id) index."""
    parameters = {"owner_id": owner_id, "limit": limit, "before_id": before_id}
    return await reads.all(_PAGE if before_id is None else _PAGE_AFTER, parameters)


async def cancel(app_db: AppSession, cache: Cache, outbox: Outbox, order: Order) -> Order:
    """Cancel once: the status flip is guarded, so stock is restored exactly once; the
    buyer's notification is staged with it."""
    now = datetime.now(UTC)
    flipped = await app_db.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == OrderStatus.PLACED)
        .values(status=OrderStatus.CANCELLED, cancelled_at=now, updated_at=now)
        .execution_options(synchronize_session=False, **BY_HAND)
    )
    if flipped.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("The order is already cancelled", code="already_cancelled")
    # The guard above is what makes cancelling happen once; the entry says what it did.
    await (
        activity("orders")
        .on(order)
        .event("cancelled")
        .with_properties(
            {
                "old": {"status": OrderStatus.PLACED, "cancelled_at": None},
                "attributes": {"status": OrderStatus.CANCELLED, "cancelled_at": now},
            }
        )
        .log(app_db, "cancelled")
    )
    for item in sorted(order.items, key=lambda item: item.product_id):
        await app_db.execute(
            update(Product)
            .where(Product.id == item.product_id)
            .values(stock=Product.stock + item.quantity)
            .execution_options(synchronize_session=False)
        )
    catalogue.changed(app_db, cache)
    await notify_staged(outbox, app_db, order.owner_id, OrderCancelled(order.id, order.total))
    await app_db.refresh(order, ["status", "cancelled_at", "updated_at"])
    return order


async def count(reads: Reads, owner_id: int) -> int:
    return await count_rows(reads, Order, Order.owner_id == owner_id)
