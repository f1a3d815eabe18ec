"""`sessions cleanup`: what has ended in the identity tables, removed in batches.

- login sessions that expired or were revoked more than SESSIONS_RETENTION_DAYS ago
  (their refresh tokens with them: a session keeps only its current token's id);
- password-reset tokens used or expired more than SESSIONS_RETENTION_DAYS ago;
- credential changes older than a day, which every worker has long followed.

Failed sign-ins are counted in the cache, with their window as expiry: `cache gc`
removes them (Redis expires them itself). API keys stay, revoked or expired: their
owners list them, and they are few.
"""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_

from app.auth.changes import prune_changes
from app.auth.models import LoginSession, PasswordResetToken
from app.core.config import Settings
from app.core.db.pruning import prune
from app.core.db.registry import Databases
from app.core.db.types import utc_now


@dataclass(frozen=True, slots=True)
class SessionsCleanup:
    """How many rows of each kind went."""

    login_sessions: int
    password_reset_tokens: int
    credential_changes: int

    def __str__(self) -> str:
        counts = asdict(self).items()
        return ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts)


async def cleanup_sessions(databases: Databases, settings: Settings) -> SessionsCleanup:
    """Remove ended sessions, spent reset tokens and followed credential changes."""
    ended_before = utc_now() - timedelta(days=settings.sessions_retention_days)
    return SessionsCleanup(
        login_sessions=await prune_login_sessions(databases, ended_before=ended_before),
        password_reset_tokens=await prune_reset_tokens(databases, ended_before=ended_before),
        credential_changes=await prune_changes(databases),
    )


async def prune_login_sessions(databases: Databases, *, ended_before: datetime) -> int:
    """Sessions that expired, or were revoked, before `ended_before`. A refresh moves
    `expires_at` on: a session refreshed while being pruned stays."""
    return await prune(
        databases,
        "auth",
        LoginSession.id,
        or_(LoginSession.expires_at < ended_before, LoginSession.revoked_at < ended_before),
        purpose="prune login sessions",
    )


async def prune_reset_tokens(databases: Databases, *, ended_before: datetime) -> int:
    """Reset tokens used, or expired, before `ended_before`."""
    return await prune(
        databases,
        "auth",
        PasswordResetToken.id,
        or_(
            PasswordResetToken.expires_at < ended_before,
            PasswordResetToken.used_at < ended_before,
        ),
        purpose="prune password reset tokens",
    )
