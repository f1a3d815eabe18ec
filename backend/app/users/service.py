"""Changing accounts: one's own profile and password, and the administrators' changes."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.auth import accounts, api_keys, signin
from app.auth.changes import record_change
from app.auth.models import User
from app.core.db.base import AuthSession
from app.core.security import hash_password
from app.essentials.activity.recording import activity
from app.essentials.notifications.sending import notify_within
from app.essentials.queue.queue import Queue
from app.users.notifications import AccountDeactivated, RolesChanged
from app.users.schemas import AdminUserUpdate, UserUpdate


async def update_profile(auth_db: AuthSession, user: User, changes: UserUpdate) -> User:
    fields = changes.model_dump(exclude_unset=True)
    if fields.get("email") not in (None, user.email):
        await accounts.ensure_email_free(auth_db, fields["email"])
        user.email = fields["email"]
    if "full_name" in fields:
        user.full_name = fields["full_name"]
    await accounts.flush_unique_email(auth_db)
    record_change(auth_db, user.id)  # the principal carries the name and email
    return user


async def change_password(
    auth_db: AuthSession, user: User, *, current: str, new: str, keep_session_id: int | None
) -> None:
    """Set a new password after checking the current one; other sessions are signed out."""
    await accounts.confirm_password(user, current)
    user.hashed_password = await hash_password(new)
    await signin.revoke_sessions(auth_db, user.id, keep_session_id=keep_session_id)
    await (
        activity("auth")
        .on(user)
        .by(user)
        .event("password_changed")
        .log(auth_db, "Password changed")
    )


async def list_page(auth_db: AuthSession, *, limit: int, after_id: int | None) -> list[User]:
    """Up to `limit` users in id order, after `after_id` (keyset pagination)."""
    query = select(User).options(selectinload(User.roles)).order_by(User.id).limit(limit)
    if after_id is not None:
        query = query.where(User.id > after_id)
    return list(await auth_db.scalars(query))


async def admin_update(
    auth_db: AuthSession, queue: Queue, user: User, changes: AdminUserUpdate
) -> User:
    """Activate or deactivate (which revokes every session and key), and set the roles.
    The user is notified of a deactivation and of roles that changed, in this transaction."""
    if changes.roles is not None:
        before = sorted(role.name for role in user.roles)
        user.roles = await accounts.roles_named(auth_db, changes.roles)
        record_change(auth_db, user.id)
        after = sorted(role.name for role in user.roles)
        if after != before:
            await notify_within(queue, auth_db, user.id, RolesChanged(tuple(after)))
    if changes.is_active is not None and changes.is_active != user.is_active:
        user.is_active = changes.is_active
        if not changes.is_active:
            await signin.revoke_sessions(auth_db, user.id)
            await api_keys.revoke_all(auth_db, user.id)
            await notify_within(queue, auth_db, user.id, AccountDeactivated())
    await auth_db.flush()
    return user
