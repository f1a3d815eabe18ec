"""What the orders API accepts and returns."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.core.web.params import Id
from app.core.web.schemas import RequestBody
from app.orders.models import OrderStatus
from app.products.schemas import Price


class OrderLine(RequestBody):
    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=10_000)]


class OrderCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [{"product_id": 1, "quantity": 2}]}]}
    )

    items: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]


class OrderItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int
    quantity: int
    unit_price: Price


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int
    status: OrderStatus
    total: Price
    items: list[OrderItemRead]
    created_at: datetime
    cancelled_at: datetime | None


class OrderSummary(BaseModel):
    """An order without its items, for lists."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    status: OrderStatus
    total: Price
    created_at: datetime


# A page's rows, validated in one call (`rows_page`).
OrderSummaryRows = TypeAdapter(list[OrderSummary])
