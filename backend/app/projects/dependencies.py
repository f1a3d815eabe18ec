"""Load a project and check that it belongs to the caller, once, for every route."""

from typing import Annotated

from fastapi import Depends

from app.auth.dependencies import Principal, require_permissions
from app.core.database import AppDb
from app.core.errors import NotFound
from app.core.params import PathId
from app.projects import service
from app.projects.models import Project

ProjectReader = Annotated[Principal, Depends(require_permissions("projects:read"))]
ProjectWriter = Annotated[Principal, Depends(require_permissions("projects:write"))]


async def readable_project(project_id: PathId, user: ProjectReader, app_db: AppDb) -> Project:
    return await _owned(app_db, project_id, user)


async def writable_project(project_id: PathId, user: ProjectWriter, app_db: AppDb) -> Project:
    return await _owned(app_db, project_id, user)


async def _owned(app_db: AppDb, project_id: int, user: Principal) -> Project:
    project = await service.get(app_db, project_id)
    if project is None or project.owner_id != user.id:
        raise NotFound("project")  # someone else's project is not found either
    return project


ReadableProject = Annotated[Project, Depends(readable_project)]
WritableProject = Annotated[Project, Depends(writable_project)]
