"""What says which database: a model's base class says where it lives, a session's class
says where it talks to.

`AuthBase` for the auth database (identity, and the essentials: cache, queue...),
`AppBase` for the application's own data. No foreign key crosses the two. Services take
an `AuthSession` or an `AppSession` as their first argument, so that mypy refuses a
service of one database handed the other's session.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core.db.types import Money, UTCDateTime, utc_now

# Stable constraint names, identical on PostgreSQL, MySQL/MariaDB and SQLite, so that
# migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _Base(DeclarativeBase):
    __abstract__ = True
    type_annotation_map = {datetime: UTCDateTime, Decimal: Money}


class AuthBase(_Base):
    """Base of every table in the auth database."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AppBase(_Base):
    """Base of every table in the app database."""

    __abstract__ = True
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now, onupdate=utc_now)


class AuthSession(AsyncSession):
    """A session on the auth database."""


class AppSession(AsyncSession):
    """A session on the app database."""
