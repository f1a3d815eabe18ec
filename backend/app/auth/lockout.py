"""Brute-force protection: too many failed sign-ins for an email, or from an address, shut
the door for a while, even to the right password."""

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginFailure
from app.core.config import Settings
from app.core.db.types import utc_now
from app.core.errors import TooManyRequests


async def ensure_not_locked_out(
    auth_db: AsyncSession, settings: Settings, email: str, address: str
) -> None:
    """429 while too many recent failures name this email, or come from this address."""
    window = timedelta(minutes=settings.login_failure_window_minutes)
    since = utc_now() - window
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
            retry_after = (oldest_counted + window - utc_now()).total_seconds()
            raise TooManyRequests(
                int(retry_after) + 1, "Too many failed sign-in attempts; try again later"
            )


async def record_failure(auth_db: AsyncSession, email: str, address: str) -> None:
    """Count a failed sign-in, committed at once: the request itself is about to fail."""
    auth_db.add(LoginFailure(email=email, address=address))
    await auth_db.commit()


async def clear_failures(auth_db: AsyncSession, email: str) -> None:
    """A successful sign-in forgives the email's failures."""
    await auth_db.execute(delete(LoginFailure).where(LoginFailure.email == email))
