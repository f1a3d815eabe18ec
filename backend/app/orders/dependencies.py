"""Load an order and check that it belongs to the caller, once, for every route."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import owned, require_permissions
from app.auth.principal import Principal
from app.orders import service
from app.orders.models import Order
from app.orders.permissions import OrderPermission

OrderReader = Annotated[Principal, Depends(require_permissions(OrderPermission.READ))]
OrderWriter = Annotated[Principal, Depends(require_permissions(OrderPermission.WRITE))]

ReadableOrder = Annotated[
    Order, Depends(owned(service.get, "order", OrderPermission.READ, path_param="order_id"))
]
WritableOrder = Annotated[
    Order, Depends(owned(service.get, "order", OrderPermission.WRITE, path_param="order_id"))
]
