"""The database store's tables, in the auth database: `cache` and `cache_locks`.

Expiry is an integer of epoch milliseconds (NULL: never), so that "expired" compares
exactly alike on every backend; an index on it serves the expiry sweep.
"""

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db.base import AuthBase
from app.core.db.types import ExactString

KEY_BYTES = 255  # the longest stored key, prefix included, in bytes of UTF-8


class CacheEntry(AuthBase):
    """A value, as JSON text, under its prefixed key."""

    __tablename__ = "cache"

    key: Mapped[str] = mapped_column(ExactString(KEY_BYTES), primary_key=True)
    # MEDIUMTEXT on MySQL, whose TEXT stops at 64 KiB; a binary collation, so that the
    # counters' "is this text an integer's digits" comparison is exact there too.
    value: Mapped[str] = mapped_column(
        Text().with_variant(mysql.MEDIUMTEXT(collation="utf8mb4_bin"), "mysql")
    )
    expires_at: Mapped[int | None] = mapped_column(BigInteger, index=True)


class CacheLock(AuthBase):
    """A lock held by `owner` (a random token) until `expires_at`."""

    __tablename__ = "cache_locks"

    key: Mapped[str] = mapped_column(ExactString(KEY_BYTES), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)
