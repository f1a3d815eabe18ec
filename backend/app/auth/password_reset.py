"""Password reset: a single-use token mailed as a link, stored only as its digest."""

from datetime import timedelta

from sqlalchemy import select, update

from app.auth import signin
from app.auth.models import PasswordResetToken, User
from app.core.config import Settings
from app.core.db.base import AuthSession
from app.core.db.types import utc_now
from app.core.errors import BadRequest
from app.core.security import digest, hash_password, new_secret
from app.essentials.activity.recording import activity


async def resettable_user_id(auth_db: AuthSession, email: str) -> int | None:
    """The id of the active user with this email, who may be sent a reset link."""
    return await auth_db.scalar(select(User.id).where(User.email == email, User.is_active))


async def start(auth_db: AuthSession, settings: Settings, user_id: int) -> tuple[User, str] | None:
    """A single-use reset token for an active user (stored as its hash), or None."""
    user = await auth_db.get(User, user_id)
    if user is None or not user.is_active:
        return None
    token = new_secret(32)
    auth_db.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=digest(token),
            expires_at=utc_now() + timedelta(minutes=settings.password_reset_expire_minutes),
        )
    )
    return user, token


async def finish(auth_db: AuthSession, token: str, new_password: str) -> None:
    """Spend the token (once: a guarded UPDATE), set the password, revoke every session."""
    now = utc_now()
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
    await signin.revoke_sessions(auth_db, user_id)
    await activity("auth").on(user).by(user).event("password_reset").log(auth_db, "Password reset")


def reset_mail(settings: Settings, email: str, token: str) -> tuple[str, str]:
    """The subject and body of the reset mail for `email`, with its link."""
    link = settings.password_reset_url.format(token=token)
    body = (
        f"Someone asked to reset the password of {email}.\n"
        f"To choose a new one, open:\n{link}\n"
        f"The link works once, for {settings.password_reset_expire_minutes} minutes.\n"
        "If it was not you, ignore this message."
    )
    return "Reset your password", body
