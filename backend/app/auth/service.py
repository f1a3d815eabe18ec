"""Sign-in, token rotation, login sessions, password reset, API keys and the lockout.

Every function takes the auth database's session first and never imports FastAPI.
A few paths commit before raising: a failed login must be counted, and a replayed
refresh token must revoke its session, even though the request itself fails.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiKey, LoginFailure, LoginSession, PasswordResetToken
from app.auth.schemas import ApiKeyCreate, TokenPair
from app.core.config import Settings
from app.core.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized
from app.core.security import (
    InvalidToken,
    create_token,
    decode_token,
    digest,
    hash_password,
    new_secret,
    verify_password,
)
from app.users.models import User

BAD_CREDENTIALS = "Incorrect email or password"


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request comes from, as recorded on its login session."""

    address: str
    user_agent: str | None


def _now() -> datetime:
    return datetime.now(UTC)


# --- sign-in ---------------------------------------------------------------------------


async def login(
    auth_db: AsyncSession, settings: Settings, *, email: str, password: str, client: Client
) -> TokenPair:
    """Check the password (or a dummy hash, for an unknown email) and open a login session."""
    await _ensure_not_locked_out(auth_db, settings, email, client.address)
    user = await auth_db.scalar(select(User).where(User.email == email))
    valid, new_hash = await verify_password(password, user.hashed_password if user else None)
    if user is None or not valid or not user.is_active:
        auth_db.add(LoginFailure(email=email, address=client.address))
        await auth_db.commit()  # counted even though this request fails
        raise Unauthorized(BAD_CREDENTIALS, code="invalid_credentials")
    if new_hash is not None:  # an outdated hash (bcrypt, weaker argon2): upgrade it now
        user.hashed_password = new_hash
    await auth_db.execute(delete(LoginFailure).where(LoginFailure.email == email))
    session = LoginSession(
        user_id=user.id,
        refresh_jti=new_secret(16),
        expires_at=_now() + timedelta(days=settings.refresh_token_expire_days),
        ip=client.address,
        user_agent=_clip(client.user_agent, 255),
    )
    auth_db.add(session)
    await auth_db.flush()
    return _token_pair(settings, session.user_id, session.id, session.refresh_jti)


async def refresh(
    auth_db: AsyncSession, settings: Settings, refresh_token: str, client: Client
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
    now = _now()
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
            await auth_db.commit()  # the revocation stands even though this request fails
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


# --- login sessions --------------------------------------------------------------------


async def list_sessions(auth_db: AsyncSession, user_id: int) -> list[LoginSession]:
    result = await auth_db.scalars(
        select(LoginSession)
        .where(
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > _now(),
        )
        .order_by(LoginSession.last_used_at.desc(), LoginSession.id.desc())
    )
    return list(result)


async def revoke_session(auth_db: AsyncSession, user_id: int, session_id: int) -> None:
    """Revoke one of the user's sessions; someone else's id is "not found"."""
    result = await auth_db.execute(
        update(LoginSession)
        .where(
            LoginSession.id == session_id,
            LoginSession.user_id == user_id,
            LoginSession.revoked_at.is_(None),
        )
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("session")


async def revoke_sessions(
    auth_db: AsyncSession, user_id: int, *, keep_session_id: int | None = None
) -> None:
    """Revoke every live session of the user, but for `keep_session_id`."""
    statement = (
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    if keep_session_id is not None:
        statement = statement.where(LoginSession.id != keep_session_id)
    await auth_db.execute(statement)


async def revoke_api_keys(auth_db: AsyncSession, user_id: int) -> None:
    await auth_db.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )


# --- password reset --------------------------------------------------------------------


async def start_password_reset(
    auth_db: AsyncSession, settings: Settings, email: str
) -> tuple[User, str] | None:
    """A single-use reset token for an active user (stored as its hash), or None."""
    user = await auth_db.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active:
        return None
    token = new_secret(32)
    auth_db.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=digest(token),
            expires_at=_now() + timedelta(minutes=settings.password_reset_expire_minutes),
        )
    )
    return user, token


async def finish_password_reset(auth_db: AsyncSession, token: str, new_password: str) -> None:
    """Spend the token (once: a guarded UPDATE), set the password, revoke every session."""
    now = _now()
    token_hash = digest(token)
    user_id = await auth_db.scalar(
        select(PasswordResetToken.user_id).where(PasswordResetToken.token_hash == token_hash)
    )
    spent = await auth_db.execute(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.token_hash == token_hash,
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if user_id is None or spent.rowcount != 1:  # type: ignore[attr-defined]
        raise BadRequest("The reset token is invalid, used or expired", code="invalid_token")
    user = await auth_db.get_one(User, user_id)
    user.hashed_password = await hash_password(new_password)
    await revoke_sessions(auth_db, user_id)


# --- API keys --------------------------------------------------------------------------


async def create_api_key(
    auth_db: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    allowed: frozenset[str],
    request: ApiKeyCreate,
) -> tuple[ApiKey, str]:
    """A new key whose scopes must lie within what its owner may do; returns it with the secret."""
    excess = sorted(set(request.scopes) - allowed)
    if excess:
        raise Forbidden(
            f"A key cannot have scopes its owner lacks: {', '.join(excess)}",
            code="scope_not_allowed",
        )
    if request.expires_at is not None and request.expires_at <= _now():
        raise BadRequest("expires_at must be in the future", code="invalid_expiry")
    key = f"{settings.api_key_prefix}{new_secret(32)}"
    api_key = ApiKey(
        user_id=user_id,
        name=request.name,
        prefix=key[: len(settings.api_key_prefix) + 6],
        key_hash=digest(key),
        scopes=" ".join(sorted(set(request.scopes))),
        expires_at=request.expires_at,
    )
    auth_db.add(api_key)
    await auth_db.flush()
    return api_key, key


async def list_api_keys(auth_db: AsyncSession, user_id: int) -> list[ApiKey]:
    result = await auth_db.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id)
    )
    return list(result)


async def revoke_api_key(auth_db: AsyncSession, user_id: int, key_id: int) -> None:
    result = await auth_db.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=_now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("API key")


# --- brute-force protection ------------------------------------------------------------


async def _ensure_not_locked_out(
    auth_db: AsyncSession, settings: Settings, email: str, address: str
) -> None:
    """429 while too many recent failures name this email, or come from this address."""
    window = timedelta(minutes=settings.login_failure_window_minutes)
    since = _now() - window
    await auth_db.execute(delete(LoginFailure).where(LoginFailure.failed_at <= since))
    for column, value, limit in (
        (LoginFailure.email, email, settings.login_max_failures_per_email),
        (LoginFailure.address, address, settings.login_max_failures_per_address),
    ):
        # The limit-th most recent failure: while it is inside the window, the door is shut.
        oldest_counted = await auth_db.scalar(
            select(LoginFailure.failed_at)
            .where(column == value, LoginFailure.failed_at > since)
            .order_by(LoginFailure.failed_at.desc())
            .limit(1)
            .offset(limit - 1)
        )
        if oldest_counted is not None:
            retry_after = (oldest_counted + window - _now()).total_seconds()
            raise TooManyRequests(
                int(retry_after) + 1, "Too many failed sign-in attempts; try again later"
            )
