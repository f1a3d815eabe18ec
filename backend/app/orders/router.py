"""/api/v1/orders: the caller's orders."""

from fastapi import APIRouter

from app.core.db.reads import AppReads
from app.core.db.sessions import AppDb
from app.core.db.types import parse_id
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, rows_page
from app.essentials.cache.dependencies import CacheDep
from app.essentials.outbox.dependencies import OutboxDep
from app.orders import service
from app.orders.dependencies import OrderReader, OrderWriter, ReadableOrder, WritableOrder
from app.orders.schemas import OrderCreate, OrderRead, OrderSummary, OrderSummaryRows

TAG = {
    "name": "orders",
    "description": "Your orders: placing one takes the stock and records the prices of the "
    "moment, cancelling puts the stock back. Lives in the **app database**.",
}
router = APIRouter(prefix="/orders", tags=[TAG["name"]])


@router.post("", status_code=201, responses=errors(401, 403, 404, 409, 422))
async def place_order(
    *, body: OrderCreate, user: OrderWriter, app_db: AppDb, cache: CacheDep, outbox: OutboxDep
) -> OrderRead:
    """Take the stock and record the prices of the moment; too little stock is a 409
    naming the product, and then nothing is taken. The buyer is notified, and a
    confirmation is mailed."""
    return OrderRead.model_validate(await service.place(app_db, cache, outbox, user.id, body))


@router.get("", responses=errors(400, 401, 403, 422))
async def list_orders(
    *, user: OrderReader, reads: AppReads, limit: Limit = 20, cursor: Cursor = None
) -> Page[OrderSummary]:
    before_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    orders = await service.list_page(reads, user.id, limit=limit + 1, before_id=before_id)
    return rows_page(orders, limit, OrderSummaryRows, lambda row: row.id)


@router.get("/{order_id}", responses=errors(401, 403, 404, 422))
async def read_order(*, order: ReadableOrder) -> OrderRead:
    return OrderRead.model_validate(order)


@router.post("/{order_id}/cancel", responses=errors(401, 403, 404, 409, 422))
async def cancel_order(
    *, order: WritableOrder, app_db: AppDb, cache: CacheDep, outbox: OutboxDep
) -> OrderRead:
    """Cancel and put the stock back; a second cancel is a 409. The buyer is notified."""
    return OrderRead.model_validate(await service.cancel(app_db, cache, outbox, order))
