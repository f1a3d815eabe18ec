"""The catalogue, in the app database."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict
from app.products.models import Product
from app.products.schemas import ProductCreate, ProductUpdate


async def create(app_db: AsyncSession, data: ProductCreate) -> Product:
    if await app_db.scalar(select(Product.id).where(Product.sku == data.sku)) is not None:
        raise Conflict(f"A product with SKU {data.sku} exists", code="sku_taken")
    product = Product(**data.model_dump())
    app_db.add(product)
    try:
        await app_db.flush()
    except IntegrityError:  # created by someone else between the check and the insert
        raise Conflict(f"A product with SKU {data.sku} exists", code="sku_taken") from None
    return product


async def get(app_db: AsyncSession, product_id: int) -> Product | None:
    return await app_db.get(Product, product_id)


async def list_page(app_db: AsyncSession, *, limit: int, after_id: int | None) -> list[Product]:
    query = select(Product).order_by(Product.id).limit(limit)
    if after_id is not None:
        query = query.where(Product.id > after_id)
    return list(await app_db.scalars(query))


async def update(app_db: AsyncSession, product: Product, changes: ProductUpdate) -> Product:
    for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(product, field, value)
    await app_db.flush()
    return product


async def delete(app_db: AsyncSession, product: Product) -> None:
    await app_db.delete(product)
    try:
        await app_db.flush()
    except IntegrityError:
        raise Conflict(
            "The product appears in orders; set its stock to 0 instead", code="product_in_use"
        ) from None
