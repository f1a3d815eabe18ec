"""What the products API accepts and returns. Prices are decimals, in JSON as strings."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from app.core.web.schemas import RequestBody

Price = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2, examples=["19.99"]),
    # A string in JSON, so that no client parses it into a float.
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str, when_used="json"),
]
Sku = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
]
ProductName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Stock = Annotated[int, Field(ge=0, le=2_000_000_000)]


class ProductCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"sku": "MUG-001", "name": "Coffee mug", "price": "12.50", "stock": 100}]
        }
    )

    sku: Sku
    name: ProductName
    price: Price
    stock: Stock = 0


class ProductUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"price": "11.90", "stock": 80}]})

    name: ProductName | None = None
    price: Price | None = None
    stock: Stock | None = None


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    price: Price
    stock: int
    created_at: datetime
    updated_at: datetime
