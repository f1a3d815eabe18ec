"""Writes to the catalogue, in the app database; each one tells the cached catalogue
(`catalogue.changed`) once it has committed. Reads go through `catalogue`."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core.db.base import AppSession
from app.core.errors import Conflict
from app.essentials.cache.facade import Cache
from app.products import catalogue
from app.products.models import Product
from app.products.schemas import ProductCreate, ProductUpdate


async def create(app_db: AppSession, cache: Cache, data: ProductCreate) -> Product:
    if await app_db.scalar(select(Product.id).where(Product.sku == data.sku)) is not None:
        raise Conflict(f"A product with SKU {data.sku} exists", code="sku_taken")
    product = Product(**data.model_dump())
    app_db.add(product)
    try:
        await app_db.flush()
    except IntegrityError:  # created by someone else between the check and the insert
        raise Conflict(f"A product with SKU {data.sku} exists", code="sku_taken") from None
    catalogue.changed(app_db, cache)
    return product


async def get(app_db: AppSession, product_id: int) -> Product | None:
    """The product as an entity, for a write (readers use `catalogue.product`)."""
    return await app_db.get(Product, product_id)


async def update(
    app_db: AppSession, cache: Cache, product: Product, changes: ProductUpdate
) -> Product:
    for field, value in changes.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(product, field, value)
    await app_db.flush()
    catalogue.changed(app_db, cache)
    return product


async def delete(app_db: AppSession, cache: Cache, product: Product) -> None:
    await app_db.delete(product)
    try:
        await app_db.flush()
    except IntegrityError:
        raise Conflict(
            "The product appears in orders; set its stock to 0 instead", code="product_in_use"
        ) from None
    catalogue.changed(app_db, cache)
