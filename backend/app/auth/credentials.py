"""The credential check: one statement on the auth database per request.

It loads the user, checks that the user is active and the login session or key is
live, and collects the user's roles and permissions. It runs on an autocommit
connection of its own: a single read needs no transaction, and handlers that do not
touch the auth database open no session on it.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update

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
from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.registry import Database
from app.core.db.types import UTCDateTime, utc_now
from app.core.errors import Unauthorized
from app.core.security import InvalidToken, decode_token, digest

# last_used_at is written at most this often, so that reads do not all become writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


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


async def from_access_token(
    auth: Database[AuthSession], settings: Settings, token: str
) -> Principal:
    """The principal of a valid access token whose login session is live."""
    try:
        claims = decode_token(settings, token, "access")
    except InvalidToken:
        raise Unauthorized("Invalid or expired token", code="invalid_token") from None
    now = utc_now()
    rows = await auth.read(
        _BY_SESSION, {"user_id": claims.user_id, "session_id": claims.session_id, "now": now}
    )
    if not rows:
        raise Unauthorized("The session has ended", code="session_revoked")
    if rows[0][7] < now - LAST_USED_RESOLUTION:
        async with auth.autocommit() as connection:
            await connection.execute(
                update(LoginSession)
                .where(LoginSession.id == claims.session_id)
                .values(last_used_at=now)
            )
    return _principal(rows, session_id=claims.session_id)


async def from_api_key(auth: Database[AuthSession], key: str) -> Principal:
    """The principal of a live API key, its permissions cut down to the key's scopes."""
    now = utc_now()
    rows = await auth.read(_BY_API_KEY, {"key_hash": digest(key), "now": now})
    if not rows:
        raise Unauthorized("Invalid, expired or revoked API key", code="invalid_api_key")
    key_id, scopes, last_used_at = rows[0][7], rows[0][8], rows[0][9]
    if last_used_at is None or last_used_at < now - LAST_USED_RESOLUTION:
        async with auth.autocommit() as connection:
            await connection.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now)
            )
    owner_may = frozenset(row[6] for row in rows if row[6])
    key_scopes = frozenset(scopes.split())
    is_superuser = rows[0][3]
    # Never more than the owner may do today: a role taken away shrinks the key too.
    effective = key_scopes if is_superuser else key_scopes & owner_may
    return _principal(rows, effective, api_key_id=key_id)
