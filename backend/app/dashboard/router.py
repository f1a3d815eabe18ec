"""/api/v1/dashboard: the caller's account (auth database) and activity (app database)."""

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth.dependencies import require_permissions
from app.auth.principal import Principal
from app.core.db.reads import AppReads
from app.core.db.sessions import DatabasesDep
from app.core.web.openapi import errors
from app.dashboard import service
from app.dashboard.schemas import Dashboard
from app.orders.permissions import OrderPermission
from app.projects.permissions import ProjectPermission

TAG = {
    "name": "dashboard",
    "description": "Your account (auth database) and activity (app database), read from "
    "both at once.",
}
router = APIRouter(tags=[TAG["name"]])

DashboardReader = Annotated[
    Principal, Depends(require_permissions(ProjectPermission.READ, OrderPermission.READ))
]


@router.get("/dashboard", responses=errors(401, 403, 503))
async def read_dashboard(
    *, user: DashboardReader, databases: DatabasesDep, reads: AppReads
) -> Dashboard:
    """Profile, roles, sessions and keys from the auth database, with counts and the latest
    projects and orders from the app database, both read at the same time."""
    return await service.build(databases.auth, reads, user)
