"""/api/v1/users: one's own account, and the administrators' view of everyone's."""

from fastapi import APIRouter

from app.auth.dependencies import CurrentUser, SessionUser, UsersAdmin
from app.core.database import AuthDb, DatabasesDep
from app.core.errors import NotFound, errors
from app.core.pagination import Cursor, Limit, Page, decode_cursor, page_of
from app.core.params import PathId, parse_id
from app.erasure.service import erase_user
from app.users import service
from app.users.schemas import AccountDeletion, AdminUserUpdate, PasswordChange, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", responses=errors(401))
async def read_me(*, user: CurrentUser) -> UserRead:
    return user.profile()


@router.patch("/me", responses=errors(401, 403, 409, 422))
async def update_me(*, changes: UserUpdate, user: SessionUser, auth_db: AuthDb) -> UserRead:
    """Change your name or email (which must not belong to another account)."""
    account = await service.get(auth_db, user.id)
    updated = await service.update_profile(auth_db, account, changes)
    return UserRead.of(updated, user.roles)


@router.post("/me/password", status_code=204, responses=errors(400, 401, 403, 422))
async def change_password(*, body: PasswordChange, user: SessionUser, auth_db: AuthDb) -> None:
    """Change your password; your other sessions are signed out."""
    await service.change_password(
        auth_db,
        await service.get(auth_db, user.id),
        current=body.current_password,
        new=body.new_password,
        keep_session_id=user.session_id,
    )


@router.delete("/me", status_code=204, responses=errors(400, 401, 403, 422, 503))
async def delete_me(
    *, body: AccountDeletion, user: SessionUser, auth_db: AuthDb, databases: DatabasesDep
) -> None:
    """Erase your account and everything you own in both databases (asks for your password)."""
    await service.confirm_password(auth_db, await service.get(auth_db, user.id), body.password)
    # Erasure runs its own transactions, step by step; this request's must not hold
    # locks they need.
    await auth_db.commit()
    await erase_user(databases, user.id)


@router.get("", responses=errors(400, 401, 403, 422))
async def list_users(
    *, admin: UsersAdmin, auth_db: AuthDb, limit: Limit = 50, cursor: Cursor = None
) -> Page[UserRead]:
    """Every user, in id order, a page at a time (needs `users:admin`)."""
    after_id = decode_cursor(cursor, parse_id)[0] if cursor else None
    users = await service.list_page(auth_db, limit=limit + 1, after_id=after_id)
    return page_of(
        users,
        limit,
        lambda user: UserRead.of(user, [role.name for role in user.roles]),
        lambda row: row.id,
    )


@router.get("/{user_id}", responses=errors(401, 403, 404, 422))
async def read_user(*, user_id: PathId, admin: UsersAdmin, auth_db: AuthDb) -> UserRead:
    user = await service.get(auth_db, user_id)
    return UserRead.of(user, [role.name for role in user.roles])


@router.patch("/{user_id}", responses=errors(400, 401, 403, 404, 422))
async def update_user(
    *, user_id: PathId, changes: AdminUserUpdate, admin: UsersAdmin, auth_db: AuthDb
) -> UserRead:
    """Activate or deactivate a user (deactivating revokes their sessions and keys), or
    set their roles."""
    user = await service.admin_update(auth_db, await service.get(auth_db, user_id), changes)
    return UserRead.of(user, [role.name for role in user.roles])


@router.delete("/{user_id}", status_code=204, responses=errors(401, 403, 404, 422, 503))
async def delete_user(
    *, user_id: PathId, admin: UsersAdmin, auth_db: AuthDb, databases: DatabasesDep
) -> None:
    """Erase a user from both databases; also finishes an erasure that was interrupted."""
    await auth_db.commit()
    if not await erase_user(databases, user_id):
        raise NotFound("user")
