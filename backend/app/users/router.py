"""/api/v1/users: one's own account, and the administrators' view of everyone's."""

from fastapi import APIRouter

from app.auth import accounts
from app.auth.dependencies import CurrentUser, SessionUser
from app.auth.schemas import UserRead
from app.core.db.sessions import AuthDb
from app.core.db.types import parse_id
from app.core.web.openapi import errors
from app.core.web.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.core.web.params import PathId
from app.essentials.activity import service as activity
from app.essentials.activity.router import before_id_of, page_of_entries
from app.essentials.activity.schemas import ActivityRead
from app.essentials.queue.dependencies import QueueDep
from app.users import service
from app.users.dependencies import UsersAdmin
from app.users.schemas import AdminUserUpdate, PasswordChange, UserUpdate

TAG = {
    "name": "users",
    "description": "Your own account, and every account for administrators (`users:admin`). "
    "Lives in the **auth database**; erasing a user also clears the app database.",
}
router = APIRouter(prefix="/users", tags=[TAG["name"]])


@router.get("/me", responses=errors(401))
async def read_me(*, user: CurrentUser) -> UserRead:
    return user.profile()


@router.get("/me/activity", responses=errors(400, 401, 422))
async def read_my_activity(
    *, user: CurrentUser, auth_db: AuthDb, limit: Limit = 20, cursor: Cursor = None
) -> Page[ActivityRead]:
    """What you did (the entries whose causer you are), newest first, a page at a time."""
    filters = activity.Filters(causer_id=user.id)
    rows = await activity.page(auth_db, filters, limit=limit + 1, before_id=before_id_of(cursor))
    return page_of_entries(rows, limit)


@router.patch("/me", responses=errors(401, 403, 409, 422))
async def update_me(*, changes: UserUpdate, user: SessionUser, auth_db: AuthDb) -> UserRead:
    """Change your name or email (which must not belong to another account)."""
    account = await accounts.get(auth_db, user.id)
    updated = await service.update_profile(auth_db, account, changes)
    return UserRead.of(updated, user.roles)


@router.post("/me/password", status_code=204, responses=errors(400, 401, 403, 422))
async def change_password(*, body: PasswordChange, user: SessionUser, auth_db: AuthDb) -> None:
    """Change your password; your other sessions are signed out."""
    await service.change_password(
        auth_db,
        await accounts.get(auth_db, user.id),
        current=body.current_password,
        new=body.new_password,
        keep_session_id=user.session_id,
    )


@router.get("", responses=errors(400, 401, 403, 422))
async def list_users(
    *, admin: UsersAdmin, auth_db: AuthDb, limit: Limit = 50, cursor: Cursor = None
) -> Page[UserRead]:
    """Every user, in id order, a page at a time (needs `users:admin`)."""
    after_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    users = await service.list_page(auth_db, limit=limit + 1, after_id=after_id)
    return page_of(users, limit, UserRead.of_account, lambda row: row.id)


@router.get("/{user_id}", responses=errors(401, 403, 404, 422))
async def read_user(*, user_id: PathId, admin: UsersAdmin, auth_db: AuthDb) -> UserRead:
    return UserRead.of_account(await accounts.get(auth_db, user_id))


@router.patch("/{user_id}", responses=errors(400, 401, 403, 404, 422))
async def update_user(
    *,
    user_id: PathId,
    changes: AdminUserUpdate,
    admin: UsersAdmin,
    auth_db: AuthDb,
    queue: QueueDep,
) -> UserRead:
    """Activate or deactivate a user (deactivating revokes their sessions and keys), or
    set their roles. The user is notified of a deactivation and of new roles."""
    account = await accounts.get(auth_db, user_id)
    user = await service.admin_update(auth_db, queue, account, changes)
    return UserRead.of_account(user)
