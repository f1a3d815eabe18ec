"""Column types that store and read back the same values on PostgreSQL, MariaDB and SQLite."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Ids are BIGINT: a larger number can name no row, and the drivers refuse to send it.
MAX_ID = 2**63 - 1
MAX_AMOUNT = Decimal("9999999999.99")  # what NUMERIC(12, 2) holds

# BIGINT everywhere, but SQLite only auto-increments an INTEGER primary key.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_id(value: object) -> int:
    """An id read back from a cursor or a token: an int within the BIGINT range."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("an id must be an integer")
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError("id out of range")
    return number


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    MySQL and SQLite keep no zone, so values are stored as naive UTC there; MySQL
    also gets microsecond precision instead of whole seconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware one (UTC)")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """An amount with two decimal places, exact on every backend.

    NUMERIC(12, 2) on PostgreSQL and MySQL; SQLite has no exact decimal type, so
    there it is stored as a whole number of cents, never as a float.
    """

    impl = Numeric(12, 2)
    cache_ok = True
    _CENT = Decimal("0.01")

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value).quantize(self._CENT)
        return int(value * 100) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / 100).quantize(self._CENT)
        return Decimal(value).quantize(self._CENT)


class ExactString(TypeDecorator[str]):
    """A string that compares byte for byte on every backend, for keys.

    MySQL's text collations fold case and ignore trailing spaces (`'Key' = 'key '` under
    utf8mb4_unicode_ci), so there the column is binary (VARBINARY) and is read back as
    text. The length is in bytes on MySQL and characters elsewhere: keep values within
    that many bytes of UTF-8.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(_VarBinaryOfText(self.length))
        return dialect.type_descriptor(String(self.length))

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return value.decode() if isinstance(value, bytes) else value


class _VarBinaryOfText(mysql.VARBINARY):
    """VARBINARY whose values are sent as text, which the server stores as their bytes:
    aiomysql cannot send bytes parameters."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None
