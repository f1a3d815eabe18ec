"""Projects in the app database. `owner_id` names a user of the auth database."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.queries import count_rows
from app.projects.models import Project
from app.projects.schemas import ProjectCreate, ProjectUpdate


async def create(app_db: AsyncSession, owner_id: int, data: ProjectCreate) -> Project:
    project = Project(owner_id=owner_id, name=data.name, description=data.description)
    app_db.add(project)
    await app_db.flush()
    return project


async def get(app_db: AsyncSession, project_id: int) -> Project | None:
    return await app_db.get(Project, project_id)


async def list_page(
    app_db: AsyncSession, owner_id: int, *, limit: int, before_id: int | None
) -> list[Project]:
    """Newest first; `before_id` continues after the previous page (keyset pagination).

    The (owner_id, id) index serves this directly, so page 1000 costs what page 1 does.
    """
    query = (
        select(Project).where(Project.owner_id == owner_id).order_by(Project.id.desc()).limit(limit)
    )
    if before_id is not None:
        query = query.where(Project.id < before_id)
    return list(await app_db.scalars(query))


async def update(app_db: AsyncSession, project: Project, changes: ProjectUpdate) -> Project:
    for field, value in changes.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue  # a name can be changed, not removed
        setattr(project, field, value)
    await app_db.flush()
    return project


async def delete(app_db: AsyncSession, project: Project) -> None:
    await app_db.delete(project)
    await app_db.flush()


async def count(app_db: AsyncSession, owner_id: int) -> int:
    return await count_rows(app_db, Project, Project.owner_id == owner_id)
