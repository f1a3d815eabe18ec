"""/api/v1/products: a catalogue anyone signed in may read; `products:write` changes it.

Reads are served through the cache (`catalogue`); each write invalidates it once
committed, so the next read on any worker sees the change.
"""

from fastapi import APIRouter

from app.auth.dependencies import CurrentUser
from app.core.db.sessions import AppDb, DatabasesDep
from app.core.db.types import parse_id
from app.core.errors import NotFound
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.core.web.params import PathId
from app.essentials.cache.dependencies import CacheDep
from app.products import catalogue, service
from app.products.dependencies import ExistingProduct, ProductWriter
from app.products.schemas import ProductCreate, ProductRead, ProductUpdate

TAG = {
    "name": "products",
    "description": "The catalogue: anyone signed in reads it, `products:write` changes it. "
    "Lives in the **app database**; reads are served through the cache.",
}
router = APIRouter(prefix="/products", tags=[TAG["name"]])


@router.get("", responses=errors(400, 401, 422))
async def list_products(
    *,
    user: CurrentUser,
    databases: DatabasesDep,
    cache: CacheDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[ProductRead]:
    after_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    products = await catalogue.page(cache, databases.app, limit=limit + 1, after_id=after_id)
    return page_of(products, limit, lambda product: product, lambda product: product.id)


@router.post("", status_code=201, responses=errors(401, 403, 409, 422))
async def create_product(
    *, body: ProductCreate, user: ProductWriter, app_db: AppDb, cache: CacheDep
) -> ProductRead:
    return ProductRead.model_validate(await service.create(app_db, cache, body))


@router.get("/{product_id}", responses=errors(401, 404, 422))
async def read_product(
    *, user: CurrentUser, product_id: PathId, databases: DatabasesDep, cache: CacheDep
) -> ProductRead:
    product = await catalogue.product(cache, databases.app, product_id)
    if product is None:
        raise NotFound("product")
    return product


@router.patch("/{product_id}", responses=errors(401, 403, 404, 422))
async def update_product(
    *,
    user: ProductWriter,
    product: ExistingProduct,
    changes: ProductUpdate,
    app_db: AppDb,
    cache: CacheDep,
) -> ProductRead:
    return ProductRead.model_validate(await service.update(app_db, cache, product, changes))


@router.delete("/{product_id}", status_code=204, responses=errors(401, 403, 404, 409, 422))
async def delete_product(
    *, user: ProductWriter, product: ExistingProduct, app_db: AppDb, cache: CacheDep
) -> None:
    await service.delete(app_db, cache, product)
