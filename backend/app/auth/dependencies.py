"""Who is calling: `CurrentUser`, `OptionalUser`, `SessionUser` and `require_permissions`.

A request proves itself with an access token (`Authorization: Bearer <jwt>`) or an
API key (`X-API-Key: <key>`, or `Authorization: Bearer <key>`). Either way one query
on the auth database loads the user, checks that the user is active and the login
session or key is live, and collects the user's roles and permissions. It runs on an
autocommit connection of its own: a single read needs no transaction, and handlers
that do not touch the auth database open no session on it.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import Select, bindparam, or_, select, update

from app.auth.models import ApiKey, LoginSession
from app.core.config import API_PREFIX, Settings
from app.core.database import Database, DatabasesDep, UTCDateTime
from app.core.dependencies import SettingsDep
from app.core.errors import Forbidden, Unauthorized
from app.core.logging import bind_user_id
from app.core.security import InvalidToken, decode_token, digest
from app.users.models import Permission, Role, User, role_permissions, user_roles
from app.users.schemas import UserRead

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
    """The authenticated caller, as read by the credential check, and what this credential
    lets them do. To change the account itself, load it in the handler's session."""

    id: int
    email: str
    full_name: str | None
    is_superuser: bool
    created_at: datetime
    roles: frozenset[str]
    permissions: frozenset[str]  # for a key, already cut down to the key's scopes
    session_id: int | None = None
    api_key_id: int | None = None

    def can(self, *needed: str) -> bool:
        if self.is_superuser and self.api_key_id is None:
            return True
        return set(needed) <= self.permissions

    def profile(self) -> UserRead:
        return UserRead(
            id=self.id,
            email=self.email,
            full_name=self.full_name,
            is_active=True,
            is_superuser=self.is_superuser,
            roles=sorted(self.roles),
            created_at=self.created_at,
        )


_ACCOUNT_COLUMNS = (User.id, User.email, User.full_name, User.is_superuser, User.created_at)


def _credential_query(*columns: Any) -> Select[Any]:
    """The account, its roles and permissions (a row per pair), and `columns`."""
    return (
        select(*_ACCOUNT_COLUMNS, Role.name, Permission.name, *columns)
        .outerjoin(user_roles, user_roles.c.user_id == User.id)
        .outerjoin(Role, Role.id == user_roles.c.role_id)
        .outerjoin(role_permissions, role_permissions.c.role_id == Role.id)
        .outerjoin(Permission, Permission.id == role_permissions.c.permission_id)
        .where(User.is_active.is_(True))
    )


# Built once: composing a statement costs more CPU than running it on the database.
_BY_SESSION = (
    _credential_query(LoginSession.last_used_at)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        LoginSession.id == bindparam("session_id"),
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > bindparam("now", type_=UTCDateTime()),
    )
)
_BY_API_KEY = (
    _credential_query(ApiKey.id, ApiKey.scopes, ApiKey.last_used_at)
    .join(ApiKey, ApiKey.user_id == User.id)
    .where(
        ApiKey.key_hash == bindparam("key_hash"),
        ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > bindparam("now", type_=UTCDateTime())),
    )
)


def _principal(
    rows: Sequence[Sequence[Any]], permissions: frozenset[str] | None = None, **credential: int
) -> Principal:
    first = rows[0]
    return Principal(
        id=first[0],
        email=first[1],
        full_name=first[2],
        is_superuser=first[3],
        created_at=first[4],
        roles=frozenset(row[5] for row in rows if row[5]),
        permissions=(
            permissions if permissions is not None else frozenset(row[6] for row in rows if row[6])
        ),
        **credential,
    )


async def _from_access_token(auth: Database, settings: Settings, token: str) -> Principal:
    try:
        claims = decode_token(settings, token, "access")
    except InvalidToken:
        raise Unauthorized("Invalid or expired token", code="invalid_token") from None
    now = datetime.now(UTC)
    async with auth.autocommit() as connection:
        rows = (
            await connection.execute(
                _BY_SESSION,
                {"user_id": claims.user_id, "session_id": claims.session_id, "now": now},
            )
        ).all()
        if not rows:
            raise Unauthorized("The session has ended", code="session_revoked")
        if rows[0][7] < now - LAST_USED_RESOLUTION:
            await connection.execute(
                update(LoginSession)
                .where(LoginSession.id == claims.session_id)
                .values(last_used_at=now)
            )
    return _principal(rows, session_id=claims.session_id)


async def _from_api_key(auth: Database, key: str) -> Principal:
    now = datetime.now(UTC)
    async with auth.autocommit() as connection:
        rows = (await connection.execute(_BY_API_KEY, {"key_hash": digest(key), "now": now})).all()
        if not rows:
            raise Unauthorized("Invalid, expired or revoked API key", code="invalid_api_key")
        key_id, scopes, last_used_at = rows[0][7], rows[0][8], rows[0][9]
        if last_used_at is None or last_used_at < now - LAST_USED_RESOLUTION:
            await connection.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
            )
    owner_may = frozenset(row[6] for row in rows if row[6])
    key_scopes = frozenset(scopes.split())
    is_superuser = rows[0][3]
    # Never more than the owner may do today: a role taken away shrinks the key too.
    effective = key_scopes if is_superuser else key_scopes & owner_may
    return _principal(rows, effective, api_key_id=key_id)


async def optional_user(
    databases: DatabasesDep,
    settings: SettingsDep,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal | None:
    """The caller, or None without credentials. Bad credentials are a 401, never ignored."""
    if api_key is not None:
        return await _from_api_key(databases.auth, api_key)
    if bearer is None:
        return None
    if bearer.startswith(settings.api_key_prefix):
        return await _from_api_key(databases.auth, bearer)
    return await _from_access_token(databases.auth, settings, bearer)


async def current_user(principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    if principal is None:
        raise Unauthorized()
    bind_user_id(principal.id)  # the request's log lines name the user from here on
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
