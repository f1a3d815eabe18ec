"""/api/v1/projects: the caller's own projects."""

from fastapi import APIRouter

from app.core.db.reads import AppReads
from app.core.db.sessions import AppDb
from app.core.db.types import parse_id
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, rows_page
from app.projects import service
from app.projects.dependencies import ProjectReader, ProjectWriter, ReadableProject, WritableProject
from app.projects.schemas import ProjectCreate, ProjectRead, ProjectRows, ProjectUpdate

TAG = {
    "name": "projects",
    "description": "The example domain to copy: your own projects. Lives in the **app database**.",
}
router = APIRouter(prefix="/projects", tags=[TAG["name"]])


@router.get("", responses=errors(400, 401, 403, 422))
async def list_projects(
    *, user: ProjectReader, reads: AppReads, limit: Limit = 20, cursor: Cursor = None
) -> Page[ProjectRead]:
    """Your projects, newest first, a page at a time."""
    before_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    projects = await service.list_page(reads, user.id, limit=limit + 1, before_id=before_id)
    return rows_page(projects, limit, ProjectRows, lambda row: row.id)


@router.post("", status_code=201, responses=errors(401, 403, 422))
async def create_project(*, body: ProjectCreate, user: ProjectWriter, app_db: AppDb) -> ProjectRead:
    project = await service.create(app_db, user.id, body)
    return ProjectRead.model_validate(project)


@router.get("/{project_id}", responses=errors(401, 403, 404, 422))
async def read_project(*, project: ReadableProject) -> ProjectRead:
    return ProjectRead.model_validate(project)


@router.patch("/{project_id}", responses=errors(401, 403, 404, 422))
async def update_project(
    *, project: WritableProject, changes: ProjectUpdate, app_db: AppDb
) -> ProjectRead:
    return ProjectRead.model_validate(await service.update(app_db, project, changes))


@router.delete("/{project_id}", status_code=204, responses=errors(401, 403, 404, 422))
async def delete_project(*, project: WritableProject, app_db: AppDb) -> None:
    await service.delete(app_db, project)
