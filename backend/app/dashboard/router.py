"""/api/v1/dashboard: the caller's account (auth database) and activity (app database)."""

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth.dependencies import Principal, require_permissions
from app.core.database import AppDb, DatabasesDep
from app.core.errors import errors
from app.dashboard import service
from app.dashboard.schemas import Dashboard

router = APIRouter(tags=["dashboard"])

DashboardReader = Annotated[Principal, Depends(require_permissions("projects:read", "orders:read"))]


@router.get("/dashboard", responses=errors(401, 403, 503))
async def dashboard(*, user: DashboardReader, databases: DatabasesDep, app_db: AppDb) -> Dashboard:
    """Profile, roles, sessions and keys from the auth database, with counts and the latest
    projects and orders from the app database, both read at the same time."""
    return await service.build(databases.auth, app_db, user)
