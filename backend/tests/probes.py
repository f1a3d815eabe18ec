"""Routes that exist only in tests, to drive the database dependencies directly."""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import AppDb, AuthDb
from app.core.dual_write import commit_both
from app.core.errors import Conflict
from app.projects.models import Project
from app.users.models import User

router = APIRouter(prefix="/probe")


class NewProject(BaseModel):
    owner_id: int
    name: str


@router.post("/projects", status_code=201)
async def create_project(*, body: NewProject, app_db: AppDb) -> dict[str, object]:
    project = Project(owner_id=body.owner_id, name=body.name)
    app_db.add(project)
    await app_db.flush()
    return {"id": project.id, "created_at": project.created_at.isoformat()}


@router.post("/projects/then-fail")
async def create_project_then_fail(*, body: NewProject, app_db: AppDb) -> None:
    app_db.add(Project(owner_id=body.owner_id, name=body.name))
    await app_db.flush()
    raise Conflict("refused after the write")


@router.post("/users", status_code=201)
async def create_user(*, email: str, auth_db: AuthDb) -> dict[str, int]:
    user = User(email=email, hashed_password="not-a-hash")
    auth_db.add(user)
    await auth_db.flush()
    return {"id": user.id}


@router.get("/auth-only")
async def auth_only(*, auth_db: AuthDb) -> dict[str, int]:
    return {"users": await auth_db.scalar(select(func.count()).select_from(User)) or 0}


@router.get("/app-only")
async def app_only(*, app_db: AppDb) -> dict[str, int]:
    return {"projects": await app_db.scalar(select(func.count()).select_from(Project)) or 0}


@router.get("/both")
async def both(*, app_db: AppDb, auth_db: AuthDb) -> dict[str, int]:
    # The auth session is entered last, so FastAPI hands it any error first: the app
    # database's failure must still be reported as the app database's.
    users = await auth_db.scalar(select(func.count()).select_from(User)) or 0
    projects = await app_db.scalar(select(func.count()).select_from(Project)) or 0
    return {"users": users, "projects": projects}


@router.post("/projects/with-owner-name")
async def create_project_and_rename_owner(
    *, body: NewProject, app_db: AppDb, auth_db: AuthDb
) -> dict[str, int]:
    """Writes both databases through `commit_both`: the app write first, undone if the
    auth commit fails."""
    project = Project(owner_id=body.owner_id, name=body.name)
    app_db.add(project)
    owner = await auth_db.get_one(User, body.owner_id)
    owner.full_name = f"owner of {body.name}"

    async def undo(app_session: AsyncSession) -> None:
        await app_session.execute(delete(Project).where(Project.id == project.id))

    await commit_both(app_db, auth_db, undo_first=undo)
    return {"id": project.id}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("an unexpected bug with a secret inside: hunter2")


def with_probes(app: FastAPI) -> FastAPI:
    app.include_router(router)
    return app
