"""Erasing a user from both databases, in steps that can be run again after a crash.

1. auth database: the user is marked as being deleted (and can no longer sign in),
   their sessions and keys are revoked;
2. app database: every row they own is deleted: each app table with an `owner_id`
   column, so a new domain is covered by naming its column so;
3. auth database: the user's row goes, and with it (by cascade) their sessions,
   keys, reset tokens and role links.

Each step commits on its own. A crash between two steps leaves the user marked, and
`erase_user` (or `python -m app.cli finish-erasures`) picks up where it stopped.
"""

from datetime import UTC, datetime

from sqlalchemy import Table, delete, select

from app import models
from app.auth import accounts, api_keys, signin
from app.auth.changes import record_change
from app.auth.models import User
from app.auth.principals import PrincipalCache
from app.core.db.base import AppSession, AuthSession
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.essentials.activity.recording import UNAUDITED, activity

OWNER_COLUMN = "owner_id"


def owned_tables() -> list[Table]:
    """App tables whose rows belong to a user, children first (as deletion needs them)."""
    return [table for table in reversed(models.APP.sorted_tables) if OWNER_COLUMN in table.c]


async def erase_own_account(
    databases: Databases, user_id: int, password: str, principals: PrincipalCache | None
) -> None:
    """Erase the caller's own account, once `password` proves it is theirs."""
    # The check runs in a transaction of its own, closed before the erasure's steps
    # start: they must not wait for locks this one holds.
    async with integrity_session(databases, "auth", "confirm the password") as auth_db:
        await accounts.confirm_password(await accounts.get(auth_db, user_id), password)
    await erase_user(databases, user_id, principals)


async def erase_user(
    databases: Databases, user_id: int, principals: PrincipalCache | None = None
) -> bool:
    """Erase the user everywhere; False when there was no such user (left to erase).

    `principals`, the calling worker's, forgets the user as soon as they are marked (the
    other workers follow the change feed), so their tokens are dead even if a later
    step fails."""
    async with integrity_session(databases, "auth", "erasure 1/3: mark the user") as auth_db:
        if not await mark_for_erasure(auth_db, user_id):
            return False
    if principals is not None:
        principals.drop_user(user_id)
    async with integrity_session(databases, "app", "erasure 2/3: delete their rows") as app_db:
        await delete_owned_rows(app_db, [user_id])
    async with integrity_session(databases, "auth", "erasure 3/3: delete the user") as auth_db:
        await delete_marked_user(auth_db, user_id)
    return True


async def mark_for_erasure(auth_db: AuthSession, user_id: int) -> bool:
    user = await auth_db.get(User, user_id, with_for_update=True)
    if user is None:
        return False
    if user.deleting_at is None:
        user.deleting_at = datetime.now(UTC)
        user.is_active = False
        await signin.revoke_sessions(auth_db, user_id)
        await api_keys.revoke_all(auth_db, user_id)
    return True


async def delete_owned_rows(app_db: AppSession, owner_ids: list[int]) -> dict[str, int]:
    """Delete what the owners own in the app database; returns the rows deleted per table."""
    deleted: dict[str, int] = {}
    for table in owned_tables():
        # Unaudited: an erasure must not keep a copy of what it erases in the log.
        result = await app_db.execute(
            delete(table).where(table.c[OWNER_COLUMN].in_(owner_ids)).execution_options(**UNAUDITED)
        )
        deleted[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
    return deleted


async def delete_marked_user(auth_db: AuthSession, user_id: int) -> None:
    """The last step: only a user marked for erasure is deleted, so it cannot run first."""
    erased = await auth_db.execute(
        delete(User)
        .where(User.id == user_id, User.deleting_at.is_not(None))
        .execution_options(**UNAUDITED)
    )
    if erased.rowcount:  # type: ignore[attr-defined]
        await activity("users").on("users", user_id).event("erased").log(auth_db, "erased")
    record_change(auth_db, user_id)


async def pending_erasures(auth_db: AuthSession) -> list[int]:
    return list(await auth_db.scalars(select(User.id).where(User.deleting_at.is_not(None))))
