"""Erasing accounts: `DELETE /api/v1/users/me` and `DELETE /api/v1/users/{user_id}`.

Under the users' paths and tag, but here: an erasure reaches into every app table,
which the users package, below the app domains, cannot know.
"""

from fastapi import APIRouter

from app.auth.dependencies import Principals, SessionUser
from app.core.db.sessions import DatabasesDep
from app.core.errors import NotFound
from app.core.web.openapi import errors
from app.core.web.params import PathId
from app.erasure import service
from app.users.dependencies import UsersAdmin
from app.users.router import TAG as USERS_TAG
from app.users.schemas import AccountDeletion

router = APIRouter(prefix="/users", tags=[USERS_TAG["name"]])


@router.delete("/me", status_code=204, responses=errors(400, 401, 403, 422, 503))
async def delete_me(
    *, body: AccountDeletion, user: SessionUser, databases: DatabasesDep, principals: Principals
) -> None:
    """Erase your account and everything you own in both databases (asks for your password)."""
    await service.erase_own_account(databases, user.id, body.password, principals)


@router.delete("/{user_id}", status_code=204, responses=errors(401, 403, 404, 422, 503))
async def delete_user(
    *, user_id: PathId, admin: UsersAdmin, databases: DatabasesDep, principals: Principals
) -> None:
    """Erase a user from both databases; also finishes an erasure that was interrupted."""
    if not await service.erase_user(databases, user_id, principals):
        raise NotFound("user")
