"""Accounts and their roles, in the auth database."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.auth import service as auth_service
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.security import hash_password, verify_password
from app.users.models import Permission, Role, User
from app.users.schemas import AdminUserUpdate, UserCreate, UserUpdate

DEFAULT_ROLE = "member"
EMAIL_TAKEN = "A user with this email already exists"


async def create(auth_db: AsyncSession, data: UserCreate, *, is_superuser: bool = False) -> User:
    """A new active user with the default role; a taken email is a 409."""
    # Hash before the first query: no transaction stays open through the hashing.
    hashed_password = await hash_password(data.password)
    if await auth_db.scalar(select(User.id).where(User.email == data.email)) is not None:
        raise Conflict(EMAIL_TAKEN, code="email_taken")
    user = User(
        email=data.email,
        hashed_password=hashed_password,
        full_name=data.full_name,
        is_superuser=is_superuser,
        roles=list(await auth_db.scalars(select(Role).where(Role.name == DEFAULT_ROLE))),
    )
    auth_db.add(user)
    await _flush_unique_email(auth_db)
    return user


async def _flush_unique_email(auth_db: AsyncSession) -> None:
    # Two requests can pass the check above at once; the unique index decides.
    try:
        await auth_db.flush()
    except IntegrityError:
        raise Conflict(EMAIL_TAKEN, code="email_taken") from None


async def get(auth_db: AsyncSession, user_id: int) -> User:
    user = await auth_db.scalar(
        select(User).where(User.id == user_id).options(selectinload(User.roles))
    )
    if user is None:
        raise NotFound("user")
    return user


async def get_by_email(auth_db: AsyncSession, email: str) -> User | None:
    user: User | None = await auth_db.scalar(
        select(User).where(User.email == email).options(selectinload(User.roles))
    )
    return user


async def update_profile(auth_db: AsyncSession, user: User, changes: UserUpdate) -> User:
    fields = changes.model_dump(exclude_unset=True)
    if fields.get("email") not in (None, user.email):
        taken = await auth_db.scalar(select(User.id).where(User.email == fields["email"]))
        if taken is not None:
            raise Conflict(EMAIL_TAKEN, code="email_taken")
        user.email = fields["email"]
    if "full_name" in fields:
        user.full_name = fields["full_name"]
    await _flush_unique_email(auth_db)
    return user


async def confirm_password(auth_db: AsyncSession, user: User, password: str) -> None:
    """A 400 unless `password` is the user's current password."""
    valid, _ = await verify_password(password, user.hashed_password)
    if not valid:
        raise BadRequest("The current password is wrong", code="wrong_password")


async def change_password(
    auth_db: AsyncSession, user: User, *, current: str, new: str, keep_session_id: int | None
) -> None:
    """Set a new password after checking the current one; other sessions are signed out."""
    await confirm_password(auth_db, user, current)
    user.hashed_password = await hash_password(new)
    await auth_service.revoke_sessions(auth_db, user.id, keep_session_id=keep_session_id)


async def list_page(auth_db: AsyncSession, *, limit: int, after_id: int | None) -> list[User]:
    """Up to `limit` users in id order, after `after_id` (keyset pagination)."""
    query = select(User).options(selectinload(User.roles)).order_by(User.id).limit(limit)
    if after_id is not None:
        query = query.where(User.id > after_id)
    return list(await auth_db.scalars(query))


async def admin_update(auth_db: AsyncSession, user: User, changes: AdminUserUpdate) -> User:
    """Activate or deactivate (which revokes every session and key), and set the roles."""
    if changes.roles is not None:
        user.roles = await _roles_named(auth_db, changes.roles)
    if changes.is_active is not None and changes.is_active != user.is_active:
        user.is_active = changes.is_active
        if not changes.is_active:
            await auth_service.revoke_sessions(auth_db, user.id)
            await auth_service.revoke_api_keys(auth_db, user.id)
    await auth_db.flush()
    return user


async def assign_role(auth_db: AsyncSession, user: User, role_name: str) -> None:
    (role,) = await _roles_named(auth_db, [role_name])
    if role not in user.roles:
        user.roles.append(role)
    await auth_db.flush()


async def _roles_named(auth_db: AsyncSession, names: list[str]) -> list[Role]:
    roles = list(await auth_db.scalars(select(Role).where(Role.name.in_(set(names)))))
    unknown = sorted(set(names) - {role.name for role in roles})
    if unknown:
        raise BadRequest(f"Unknown role: {', '.join(unknown)}", code="unknown_role")
    return roles


async def all_permission_names(auth_db: AsyncSession) -> frozenset[str]:
    return frozenset(await auth_db.scalars(select(Permission.name)))
