"""Accounts and their roles: creating, finding, checking a password, granting roles."""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.auth.changes import record_change
from app.auth.models import Permission, Role, User
from app.auth.permissions import DEFAULT_ROLE
from app.auth.schemas import UserCreate
from app.core.db.base import AuthSession
from app.core.errors import BadRequest, Conflict, NotFound
from app.core.security import hash_password, verify_password

EMAIL_TAKEN = "A user with this email already exists"


async def create(auth_db: AuthSession, data: UserCreate, *, is_superuser: bool = False) -> User:
    """A new active user with the default role; a taken email is a 409."""
    # Hash before the first query: no transaction stays open through the hashing.
    hashed_password = await hash_password(data.password)
    await ensure_email_free(auth_db, data.email)
    user = User(
        email=data.email,
        hashed_password=hashed_password,
        full_name=data.full_name,
        is_superuser=is_superuser,
        roles=list(await auth_db.scalars(select(Role).where(Role.name == DEFAULT_ROLE))),
    )
    auth_db.add(user)
    await flush_unique_email(auth_db)
    return user


async def ensure_email_free(auth_db: AuthSession, email: str) -> None:
    if await auth_db.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(EMAIL_TAKEN, code="email_taken")


async def flush_unique_email(auth_db: AuthSession) -> None:
    """Flush, turning a lost race for an email into the same 409 as the check before."""
    # Two requests can pass `ensure_email_free` at once; the unique index decides.
    try:
        await auth_db.flush()
    except IntegrityError:
        raise Conflict(EMAIL_TAKEN, code="email_taken") from None


async def get(auth_db: AuthSession, user_id: int) -> User:
    user = await auth_db.scalar(
        select(User).where(User.id == user_id).options(selectinload(User.roles))
    )
    if user is None:
        raise NotFound("user")
    return user


async def get_by_email(auth_db: AuthSession, email: str) -> User | None:
    user: User | None = await auth_db.scalar(
        select(User).where(User.email == email).options(selectinload(User.roles))
    )
    return user


async def confirm_password(user: User, password: str) -> None:
    """A 400 unless `password` is the user's current password."""
    valid, _ = await verify_password(password, user.hashed_password)
    if not valid:
        raise BadRequest("The current password is wrong", code="wrong_password")


async def assign_role(auth_db: AuthSession, user: User, role_name: str) -> None:
    (role,) = await roles_named(auth_db, [role_name])
    if role not in user.roles:
        user.roles.append(role)
        record_change(auth_db, user.id)
    await auth_db.flush()


async def roles_named(auth_db: AuthSession, names: list[str]) -> list[Role]:
    """The roles of these names; an unknown name is a 400 naming it."""
    roles = list(await auth_db.scalars(select(Role).where(Role.name.in_(set(names)))))
    unknown = sorted(set(names) - {role.name for role in roles})
    if unknown:
        raise BadRequest(f"Unknown role: {', '.join(unknown)}", code="unknown_role")
    return roles


async def all_permission_names(auth_db: AuthSession) -> frozenset[str]:
    return frozenset(await auth_db.scalars(select(Permission.name)))
