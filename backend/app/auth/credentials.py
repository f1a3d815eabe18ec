"""The credential check: from this worker's memory, else one statement on the auth database.

The statement loads the user, checks that the user is active and the login session or
key is live, and collects the user's roles and permissions. It runs on an autocommit
connection of its own: a single read needs no transaction, and handlers that do not
touch the auth database open no session on it. What it finds is kept in the worker's
`PrincipalCache`, which the change feed keeps exact (`app.auth.principals`).
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, or_, select

from app.auth.models import (
    ApiKey,
    LoginSession,
    Permission,
    Role,
    User,
    role_permissions,
    user_roles,
)
from app.auth.principal import Principal
from app.auth.principals import PrincipalCache
from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.registry import Database
from app.core.db.types import UTCDateTime, utc_now
from app.core.errors import Unauthorized
from app.core.security import InvalidToken, decode_token, digest

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
    _credential_query(LoginSession.expires_at)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        LoginSession.id == bindparam("session_id"),
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > bindparam("now", type_=UTCDateTime()),
    )
)
_BY_API_KEY = (
    _credential_query(ApiKey.id, ApiKey.scopes, ApiKey.expires_at)
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


async def from_access_token(
    auth: Database[AuthSession], principals: PrincipalCache, settings: Settings, token: str
) -> Principal:
    """The principal of a valid access token whose login session is live.

    Kept by the token itself: the same string verified once verifies again, so a token
    served from memory is not decoded again (its expiry is the entry's, with the
    session's). A token's jti never comes back, even where a session id can (SQLite
    reuses ids after a deletion), so neither does its key."""
    key = f"token:{token}"
    principal = principals.get(key)
    if principal is None:
        try:
            claims = decode_token(settings, token, "access")
        except InvalidToken:
            raise Unauthorized("Invalid or expired token", code="invalid_token") from None
        generation = principals.generation
        parameters = {"user_id": claims.user_id, "session_id": claims.session_id}
        rows = await auth.read(_BY_SESSION, {**parameters, "now": utc_now()})
        if not rows:
            raise Unauthorized("The session has ended", code="session_revoked")
        principal = _principal(rows, session_id=claims.session_id)
        expires_at = min(rows[0][7], claims.expires_at)
        principals.put(key, principal, expires_at, generation=generation)
    assert principal.session_id is not None
    principals.last_use.session(principal.session_id)
    return principal


async def from_api_key(
    auth: Database[AuthSession], principals: PrincipalCache, key: str
) -> Principal:
    """The principal of a live API key, its permissions cut down to the key's scopes."""
    key_hash = digest(key)
    cache_key = f"key:{key_hash}"
    principal = principals.get(cache_key)
    if principal is None:
        generation = principals.generation
        rows = await auth.read(_BY_API_KEY, {"key_hash": key_hash, "now": utc_now()})
        if not rows:
            raise Unauthorized("Invalid, expired or revoked API key", code="invalid_api_key")
        key_id, scopes, expires_at = rows[0][7], rows[0][8], rows[0][9]
        owner_may = frozenset(row[6] for row in rows if row[6])
        key_scopes = frozenset(scopes.split())
        is_superuser = rows[0][3]
        # Never more than the owner may do today: a role taken away shrinks the key too.
        effective = key_scopes if is_superuser else key_scopes & owner_may
        principal = _principal(rows, effective, api_key_id=key_id)
        principals.put(cache_key, principal, expires_at, generation=generation)
    assert principal.api_key_id is not None
    principals.last_use.api_key(principal.api_key_id)
    return principal
