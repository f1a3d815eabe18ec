"""Accounts, roles and permissions: tables of the auth database."""

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import AuthBase, BigIntId, TimestampMixin

user_roles = Table(
    "user_roles",
    AuthBase.metadata,
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "role_id",
        BigInteger,
        ForeignKey("roles.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)

role_permissions = Table(
    "role_permissions",
    AuthBase.metadata,
    Column("role_id", BigInteger, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "permission_id",
        BigInteger,
        ForeignKey("permissions.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class User(TimestampMixin, AuthBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    # Set when erasure starts; the row goes once the app database holds nothing of theirs.
    deleting_at: Mapped[datetime | None]

    roles: Mapped[list["Role"]] = relationship(secondary=user_roles, lazy="raise")


class Role(AuthBase):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))

    permissions: Mapped[list["Permission"]] = relationship(secondary=role_permissions, lazy="raise")


class Permission(AuthBase):
    """A permission is a string such as `projects:read`; roles bundle them."""

    __tablename__ = "permissions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
