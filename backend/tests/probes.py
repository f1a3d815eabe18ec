"""Routes that exist only in tests, to drive the database dependencies directly."""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import func, select

from app.auth.models import User
from app.core.db.sessions import AppDb, AuthDb, on_commit
from app.core.errors import Conflict
from app.projects.models import Project

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


# Names seen by after-commit callbacks, in the order they ran.
COMMITTED: list[str] = []


@router.post("/projects/on-commit", status_code=201)
async def create_project_on_commit(*, body: NewProject, fail: bool, app_db: AppDb) -> None:
    app_db.add(Project(owner_id=body.owner_id, name=body.name))

    async def seen() -> None:
        count = await app_db.scalar(select(func.count()).select_from(Project))
        COMMITTED.append(f"{body.name}:{count}")

    on_commit(app_db, seen)
    await app_db.flush()
    if fail:
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


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("an unexpected bug with a secret inside: hunter2")


def with_probes(app: FastAPI) -> FastAPI:
    app.include_router(router)
    return app
