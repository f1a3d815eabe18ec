"""/api/v1/orders: the caller's orders."""

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth.dependencies import Principal, require_permissions
from app.core.database import AppDb
from app.core.errors import NotFound, errors
from app.core.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.core.params import PathId, parse_id
from app.orders import service
from app.orders.models import Order
from app.orders.schemas import OrderCreate, OrderRead, OrderSummary

router = APIRouter(prefix="/orders", tags=["orders"])

OrderReader = Annotated[Principal, Depends(require_permissions("orders:read"))]
OrderWriter = Annotated[Principal, Depends(require_permissions("orders:write"))]


async def _owned(app_db: AppDb, order_id: int, user: Principal) -> Order:
    order = await service.get(app_db, order_id)
    if order is None or order.owner_id != user.id:
        raise NotFound("order")
    return order


async def readable_order(order_id: PathId, user: OrderReader, app_db: AppDb) -> Order:
    return await _owned(app_db, order_id, user)


async def writable_order(order_id: PathId, user: OrderWriter, app_db: AppDb) -> Order:
    return await _owned(app_db, order_id, user)


ReadableOrder = Annotated[Order, Depends(readable_order)]
WritableOrder = Annotated[Order, Depends(writable_order)]


@router.post("", status_code=201, responses=errors(401, 403, 404, 409, 422))
async def place_order(*, body: OrderCreate, user: OrderWriter, app_db: AppDb) -> OrderRead:
    """Take the stock and record the prices of the moment; too little stock is a 409
    naming the product, and then nothing is taken."""
    return OrderRead.model_validate(await service.place(app_db, user.id, body))


@router.get("", responses=errors(400, 401, 403, 422))
async def list_orders(
    *, user: OrderReader, app_db: AppDb, limit: Limit = 20, cursor: Cursor = None
) -> Page[OrderSummary]:
    before_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    orders = await service.list_page(app_db, user.id, limit=limit + 1, before_id=before_id)
    return page_of(orders, limit, OrderSummary.model_validate, lambda row: row.id)


@router.get("/{order_id}", responses=errors(401, 403, 404, 422))
async def read_order(*, order: ReadableOrder) -> OrderRead:
    return OrderRead.model_validate(order)


@router.post("/{order_id}/cancel", responses=errors(401, 403, 404, 409, 422))
async def cancel_order(*, order: WritableOrder, app_db: AppDb) -> OrderRead:
    """Cancel and put the stock back; a second cancel is a 409."""
    return OrderRead.model_validate(await service.cancel(app_db, order))
