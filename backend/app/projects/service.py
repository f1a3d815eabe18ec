"""Projects in the app database. `owner_id` names a user of the auth database."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, select

from app.core.db.base import AppSession
from app.core.db.queries import count_rows
from app.core.db.reads import Reads
from app.projects.models import Project
from app.projects.schemas import ProjectCreate, ProjectUpdate


async def create(app_db: AppSession, owner_id: int, data: ProjectCreate) -> Project:
    project = Project(owner_id=owner_id, name=data.name, description=data.description)
    app_db.add(project)
    await app_db.flush()
    return project


async def get(app_db: AppSession, project_id: int) -> Project | None:
    return await app_db.get(Project, project_id)


# The columns a page shows, in a statement built once: a page is read as rows on an
# autocommit connection (`Reads`), validated straight into `ProjectRead`, with no session,
# ORM entity or identity map in between (the step table of `make bench` has the figures).
_PAGE = (
    select(
        Project.id,
        Project.owner_id,
        Project.name,
        Project.description,
        Project.created_at,
        Project.updated_at,
    )
    .where(Project.owner_id == bindparam("owner_id"))
    .order_by(Project.id.desc())
    .limit(bindparam("limit"))
)
_PAGE_AFTER = _PAGE.where(Project.id < bindparam("before_id"))
PageRow = Row[int, int, str, str | None, datetime, datetime]


async def list_page(
    reads: Reads, owner_id: int, *, limit: int, before_id: int | None
) -> Sequence[PageRow]:
    """Newest first; `before_id` continues after the previous page (keyset pagination).

    The (owner_id, id) index serves this directly, so page 1000 costs what page 1 does.
    """
    parameters = {"owner_id": owner_id, "limit": limit, "before_id": before_id}
    return await reads.all(_PAGE if before_id is None else _PAGE_AFTER, parameters)


async def update(app_db: AppSession, project: Project, changes: ProjectUpdate) -> Project:
    for field, value in changes.model_dump(exclude_unset=True).items():
        if field == "name" and value is None:
            continue  # a name can be changed, not removed
        setattr(project, field, value)
    await app_db.flush()
    return project


async def delete(app_db: AppSession, project: Project) -> None:
    await app_db.delete(project)
    await app_db.flush()


async def count(reads: Reads, owner_id: int) -> int:
    return await count_rows(reads, Project, Project.owner_id == owner_id)
