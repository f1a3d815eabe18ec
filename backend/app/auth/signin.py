"""Signing in and staying signed in: the login, token rotation, and login sessions.

Every function takes the auth database's session first and never imports FastAPI.
A replayed refresh token commits before raising: the session must be revoked even though
the request itself fails. Failed logins count in the cache (`lockout`), outside any
transaction of the auth database: before it, or once it has committed.
"""

from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import select, update

from app.auth import lockout
from app.auth.changes import record_change
from app.auth.models import LoginSession, User
from app.auth.schemas import TokenPair
from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.sessions import commit_now, on_commit
from app.core.db.types import utc_now
from app.core.errors import NotFound, Unauthorized
from app.core.security import InvalidToken, create_token, decode_token, new_secret, verify_password
from app.essentials.activity.recording import activity
from app.essentials.cache.facade import Cache

BAD_CREDENTIALS = "Incorrect email or password"


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request comes from, as recorded on its login session."""

    address: str
    user_agent: str | None


async def login(
    auth_db: AuthSession,
    cache: Cache,
    settings: Settings,
    *,
    email: str,
    password: str,
    client: Client,
) -> TokenPair:
    """Check the password (or a dummy hash, for an unknown email) and open a login session."""
    await lockout.ensure_not_locked_out(cache, settings, email, client.address)
    user = await auth_db.scalar(select(User).where(User.email == email))
    valid, new_hash = await verify_password(password, user.hashed_password if user else None)
    if user is None or not valid or not user.is_active:
        # Nothing to keep; and on SQLite the cache's writes wait for the auth database's
        # one writer, which this transaction would otherwise still be.
        user_id = user.id if user else None
        await auth_db.rollback()
        await lockout.record_failure(cache, settings, email, client.address)
        # The entry stands though the request fails; only the email tried, never the password.
        failure = activity("auth").by(user_id).event("sign_in_failed")
        if user_id is not None:
            failure = failure.on("users", user_id)
        await failure.with_properties({"email": email, "ip": client.address}).log(
            auth_db, "Sign-in failed"
        )
        await commit_now(auth_db)
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    if new_hash is not None:  # an outdated hash (bcrypt, weaker argon2): upgrade it now
        user.hashed_password = new_hash
    on_commit(auth_db, partial(lockout.clear_failures, cache, settings, email, client.address))
    session = LoginSession(
        user_id=user.id,
        refresh_jti=new_secret(16),
        expires_at=utc_now() + timedelta(days=settings.refresh_token_expire_days),
        ip=client.address,
        user_agent=_clip(client.user_agent, 255),
    )
    auth_db.add(session)
    await auth_db.flush()
    await (
        activity("auth")
        .on(user)
        .by(user)
        .event("signed_in")
        .with_properties({"ip": client.address, "user_agent": session.user_agent})
        .log(auth_db, "Signed in")
    )
    return _token_pair(settings, session.user_id, session.id, session.refresh_jti)


async def refresh(
    auth_db: AuthSession, settings: Settings, refresh_token: str, client: Client
) -> TokenPair:
    """Rotate: the presented refresh token is spent and a new pair issued.

    Only the session's current refresh token is accepted, swapped atomically (one
    UPDATE guarded by the old `jti`), so of two concurrent refreshes one wins. Any
    other token of a live session is a replay: the session is revoked.
    """
    try:
        claims = decode_token(settings, refresh_token, "refresh")
    except InvalidToken:
        raise Unauthorized("Invalid refresh token", code="invalid_token") from None
    now = utc_now()
    new_jti = new_secret(16)
    active_user = select(User.id).where(User.id == claims.user_id, User.is_active.is_(True))
    rotated = await auth_db.execute(
        update(LoginSession)
        .where(
            LoginSession.id == claims.session_id,
            LoginSession.user_id.in_(active_user),
            LoginSession.refresh_jti == claims.jti,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
        )
        .values(
            refresh_jti=new_jti,
            last_used_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_expire_days),
            ip=client.address,
            user_agent=_clip(client.user_agent, 255),
        )
        .execution_options(synchronize_session=False)
    )
    if rotated.rowcount != 1:  # type: ignore[attr-defined]
        replayed = await auth_db.execute(
            update(LoginSession)
            .where(
                LoginSession.id == claims.session_id,
                LoginSession.user_id == claims.user_id,
                LoginSession.refresh_jti != claims.jti,
                LoginSession.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        if replayed.rowcount:  # type: ignore[attr-defined]
            record_change(auth_db, claims.user_id)
            await commit_now(auth_db)  # the revocation stands even though this request fails
            raise Unauthorized(
                "Refresh token reuse detected; the session has been revoked",
                code="token_reused",
            )
        raise Unauthorized("Invalid refresh token", code="invalid_token")
    return _token_pair(settings, claims.user_id, claims.session_id, new_jti)


def _token_pair(settings: Settings, user_id: int, session_id: int, refresh_jti: str) -> TokenPair:
    access, _ = create_token(settings, type="access", user_id=user_id, session_id=session_id)
    refresh_token, _ = create_token(
        settings, type="refresh", user_id=user_id, session_id=session_id, jti=refresh_jti
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh_token,
        expires_in=settings.access_token_expire_minutes * 60,
    )


def _clip(text: str | None, length: int) -> str | None:
    return text[:length] if text else None


async def list_sessions(auth_db: AuthSession, user_id: int) -> list[LoginSession]:
    result = await auth_db.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > utc_now(),
        )
        .order_by(LoginSession.last_used_at.desc(), LoginSession.id.desc())
    )
    return list(result)


async def revoke_session(auth_db: AuthSession, user_id: int, session_id: int) -> None:
    """Revoke one of the user's sessions; someone else's id is "not found"."""
    result = await auth_db.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
        )
        .values(revoked_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("session")
    record_change(auth_db, user_id)


async def revoke_sessions(
    auth_db: AuthSession, user_id: int, *, keep_session_id: int | None = None
) -> None:
    """Revoke every live session of the user, but for `keep_session_id`."""
    statement = (
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    if keep_session_id is not None:
        statement = statement.where(LoginSession.id != keep_session_id)
    await auth_db.execute(statement)
    record_change(auth_db, user_id)
