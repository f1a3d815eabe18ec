"""Identity: accounts, roles and permissions, and the credentials that prove who calls.

Tables of the auth database. As in Django's `django.contrib.auth`, the identity tables
live together, below every package that needs to know who a user is.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db.base import AuthBase, TimestampMixin
from app.core.db.types import BigIntId, utc_now
from app.essentials.activity.recording import Auditable

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


class User(Auditable, TimestampMixin, AuthBase):
    __tablename__ = "users"
    __activity_log_name__ = "users"
    __activity_relations__ = {"roles": "name"}  # logged as the sorted role names

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


class LoginSession(AuthBase):
    """One sign-in: its refresh token rotates, its access tokens name it (`sid`).

    Only the current refresh token's `jti` is kept; presenting any other token of the
    session is a replay, and revokes the session.
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    refresh_jti: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_used_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class ApiKey(Auditable, AuthBase):
    """A personal access token: only its SHA-256 is stored; `prefix` lets people tell keys apart."""

    __tablename__ = "api_keys"
    __activity_log_name__ = "auth"
    # `key_hash` is left out by rule; each use of the key is not an event worth a row.
    __activity_exclude__ = frozenset({"last_used_at"})

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(Text)  # space-separated permission names
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PasswordResetToken(AuthBase):
    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class CredentialChange(AuthBase):
    """A change that ends or alters what a user's credentials allow (a logout, a revoked
    key, a deactivation, new roles, a new email), written in the change's own transaction.

    Every worker keeps verified principals in memory and follows this table to drop what
    changed (`app.auth.changes`); `user_id` NULL means everyone's. Rows are only read
    forward from the newest a worker has seen, and pruned after a day.
    """

    __tablename__ = "credential_changes"
    # Followers read ids forward: SQLite must never hand out an id again once the rows
    # below it are pruned (AUTOINCREMENT); PostgreSQL's and MariaDB's counters never do.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
