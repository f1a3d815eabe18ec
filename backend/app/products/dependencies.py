"""Who may change the catalogue, and the product a route names."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import require_permissions
from app.auth.principal import Principal
from app.core.db.sessions import AppDb
from app.core.errors import NotFound
from app.core.web.params import PathId
from app.products import service
from app.products.models import Product
from app.products.permissions import ProductPermission

ProductWriter = Annotated[Principal, Depends(require_permissions(ProductPermission.WRITE))]


async def existing_product(product_id: PathId, app_db: AppDb) -> Product:
    product = await service.get(app_db, product_id)
    if product is None:
        raise NotFound("product")
    return product


ExistingProduct = Annotated[Product, Depends(existing_product)]
