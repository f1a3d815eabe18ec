"""Who is calling: `CurrentUser`, `OptionalUser`, `SessionUser` and `require_permissions`.

A request proves itself with an access token (`Authorization: Bearer <jwt>`) or an
API key (`X-API-Key: <key>`, or `Authorization: Bearer <key>`). Either way one query
on the auth database loads the user, checks that the user is active and the login
session or key is live, and collects the user's roles and permissions.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiKey, LoginSession
from app.core.config import API_PREFIX, Settings
from app.core.database import AuthDb
from app.core.errors import Forbidden, Unauthorized
from app.core.security import InvalidToken, decode_token, digest
from app.users.models import Permission, Role, User, role_permissions, user_roles

# last_used_at is written at most this often, so that reads do not all become writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)

oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/auth/login",
    auto_error=False,
    scheme_name="OAuth2Password",
    description="An access token from the login form (or an API key as a bearer token).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="APIKey",
    description="A personal API key, created at POST /api/v1/auth/api-keys.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: the user, and what this credential lets them do."""

    user: User
    roles: frozenset[str]
    permissions: frozenset[str]  # for a key, already cut down to the key's scopes
    session_id: int | None = None
    api_key_id: int | None = None

    @property
    def id(self) -> int:
        return self.user.id

    def can(self, *needed: str) -> bool:
        if self.user.is_superuser and self.api_key_id is None:
            return True
        return set(needed) <= self.permissions


def _with_roles_and_permissions(*columns: Any) -> Select[Any]:
    return (
        select(User, Role.name, Permission.name, *columns)
        .outerjoin(user_roles, user_roles.c.user_id == User.id)
        .outerjoin(Role, Role.id == user_roles.c.role_id)
        .outerjoin(role_permissions, role_permissions.c.role_id == Role.id)
        .outerjoin(Permission, Permission.id == role_permissions.c.permission_id)
        .where(User.is_active.is_(True))
    )


async def _from_access_token(auth_db: AsyncSession, settings: Settings, token: str) -> Principal:
    try:
        claims = decode_token(settings, token, "access")
    except InvalidToken:
        raise Unauthorized("Invalid or expired token", code="invalid_token") from None
    now = datetime.now(UTC)
    rows = (
        await auth_db.execute(
            _with_roles_and_permissions(LoginSession.last_used_at)
            .join(LoginSession, LoginSession.user_id == User.id)
            .where(
                User.id == claims.user_id,
                LoginSession.id == claims.session_id,
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > now,
            )
        )
    ).all()
    if not rows:
        raise Unauthorized("The session has ended", code="session_revoked")
    if rows[0][3] < now - LAST_USED_RESOLUTION:
        await auth_db.execute(
            update(LoginSession)
            .where(LoginSession.id == claims.session_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return Principal(
        user=rows[0][0],
        roles=frozenset(row[1] for row in rows if row[1]),
        permissions=frozenset(row[2] for row in rows if row[2]),
        session_id=claims.session_id,
    )


async def _from_api_key(auth_db: AsyncSession, key: str) -> Principal:
    now = datetime.now(UTC)
    rows = (
        await auth_db.execute(
            _with_roles_and_permissions(ApiKey.id, ApiKey.scopes, ApiKey.last_used_at)
            .join(ApiKey, ApiKey.user_id == User.id)
            .where(
                ApiKey.key_hash == digest(key),
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
        )
    ).all()
    if not rows:
        raise Unauthorized("Invalid, expired or revoked API key", code="invalid_api_key")
    user, key_id, scopes, last_used_at = rows[0][0], rows[0][3], rows[0][4], rows[0][5]
    if last_used_at is None or last_used_at < now - LAST_USED_RESOLUTION:
        await auth_db.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    owner_may = frozenset(row[2] for row in rows if row[2])
    key_scopes = frozenset(scopes.split())
    # Never more than the owner may do today: a role taken away shrinks the key too.
    effective = key_scopes if user.is_superuser else key_scopes & owner_may
    return Principal(
        user=user,
        roles=frozenset(row[1] for row in rows if row[1]),
        permissions=effective,
        api_key_id=key_id,
    )


async def optional_user(
    request: Request,
    auth_db: AuthDb,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal | None:
    """The caller, or None without credentials. Bad credentials are a 401, never ignored."""
    settings: Settings = request.app.state.settings
    if api_key is not None:
        return await _from_api_key(auth_db, api_key)
    if bearer is None:
        return None
    if bearer.startswith(settings.api_key_prefix):
        return await _from_api_key(auth_db, bearer)
    return await _from_access_token(auth_db, settings, bearer)


async def current_user(principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    if principal is None:
        raise Unauthorized()
    return principal


async def session_user(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """Only a signed-in session, not an API key: for managing credentials themselves."""
    if principal.session_id is None:
        raise Forbidden("This needs a signed-in session, not an API key", code="session_required")
    return principal


OptionalUser = Annotated[Principal | None, Depends(optional_user)]
CurrentUser = Annotated[Principal, Depends(current_user)]
SessionUser = Annotated[Principal, Depends(session_user)]


def require_permissions(*needed: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through callers holding every one of `needed`."""

    async def check(principal: CurrentUser) -> Principal:
        if not principal.can(*needed):
            raise Forbidden(f"Requires permission: {', '.join(needed)}", code="permission_denied")
        return principal

    return check


UsersAdmin = Annotated[Principal, Depends(require_permissions("users:admin"))]
