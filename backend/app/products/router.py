"""/api/v1/products: a catalogue anyone signed in may read; `products:write` changes it."""

from fastapi import APIRouter

from app.auth.dependencies import CurrentUser
from app.core.db.sessions import AppDb
from app.core.db.types import parse_id
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.products import service
from app.products.dependencies import ExistingProduct, ProductWriter
from app.products.schemas import ProductCreate, ProductRead, ProductUpdate

TAG = {
    "name": "products",
    "description": "The catalogue: anyone signed in reads it, `products:write` changes it. "
    "Lives in the **app database**.",
}
router = APIRouter(prefix="/products", tags=[TAG["name"]])


@router.get("", responses=errors(400, 401, 422))
async def list_products(
    *, user: CurrentUser, app_db: AppDb, limit: Limit = 20, cursor: Cursor = None
) -> Page[ProductRead]:
    after_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    products = await service.list_page(app_db, limit=limit + 1, after_id=after_id)
    return page_of(products, limit, ProductRead.model_validate, lambda row: row.id)


@router.post("", status_code=201, responses=errors(401, 403, 409, 422))
async def create_product(*, body: ProductCreate, user: ProductWriter, app_db: AppDb) -> ProductRead:
    return ProductRead.model_validate(await service.create(app_db, body))


@router.get("/{product_id}", responses=errors(401, 404, 422))
async def read_product(*, user: CurrentUser, product: ExistingProduct) -> ProductRead:
    return ProductRead.model_validate(product)


@router.patch("/{product_id}", responses=errors(401, 403, 404, 422))
async def update_product(
    *, user: ProductWriter, product: ExistingProduct, changes: ProductUpdate, app_db: AppDb
) -> ProductRead:
    return ProductRead.model_validate(await service.update(app_db, product, changes))


@router.delete("/{product_id}", status_code=204, responses=errors(401, 403, 404, 409, 422))
async def delete_product(*, user: ProductWriter, product: ExistingProduct, app_db: AppDb) -> None:
    await service.delete(app_db, product)
