"""A table's row count and checksum, equal on every backend for equal data.

Rows are read through the models' column types, so each value arrives as the same
Python value whatever stores it (an aware UTC datetime, a `Decimal`, a `bool`), then
written out as text that no backend can vary: timestamps as UTC ISO strings, decimals
in fixed point without trailing zeros, booleans as 0/1. Each row's text is hashed with
SHA-256 and the hashes are added up modulo 2**256. The sum does not depend on the order
in which rows arrive: a table is read in primary-key order, but text keys sort by the
database's collation (MariaDB's is case-insensitive, PostgreSQL's follows the locale),
so two backends holding the same rows may not list them alike. A row lost, added,
duplicated or changed still changes the sum.
"""

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.db.transfer.keyset import batches

_MODULUS = 2**256


@dataclass(frozen=True, slots=True)
class TableSum:
    rows: int
    checksum: str  # 64 hex digits


def canonical(value: Any) -> Any:
    """A value as text that is the same on every backend (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)  # naive means UTC here
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return str(value)


def row_hash(values: tuple[Any, ...] | list[Any]) -> int:
    text = json.dumps([canonical(value) for value in values], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")


async def table_sum(connection: AsyncConnection, table: Table, batch_size: int) -> TableSum:
    """Count and checksum every row of `table`."""
    rows = total = 0
    async for batch in batches(connection, table, batch_size):
        rows += len(batch)
        total = (total + sum(row_hash(tuple(row)) for row in batch)) % _MODULUS
    return TableSum(rows, f"{total:064x}")


async def compare_tables(
    source: AsyncEngine,
    target: AsyncEngine,
    tables: list[Table],
    batch_size: int,
    report: Callable[[str], None],
) -> list[str]:
    """Each table whose rows differ between the two databases, and how; both are read
    at once. `report` hears of each table found equal."""
    mismatches = []
    for table in tables:
        ours, theirs = await asyncio.gather(
            _engine_sum(source, table, batch_size), _engine_sum(target, table, batch_size)
        )
        if ours == theirs:
            report(f"verified {table.name}: {ours.rows:,} rows, checksum {ours.checksum[:16]}")
        elif ours.rows != theirs.rows:
            mismatches.append(
                f"{table.name}: {ours.rows:,} rows in the source, {theirs.rows:,} in the target"
            )
        else:
            mismatches.append(f"{table.name}: as many rows, different checksums")
    return mismatches


async def _engine_sum(engine: AsyncEngine, table: Table, batch_size: int) -> TableSum:
    async with engine.connect() as connection:
        reader = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return await table_sum(reader, table, batch_size)
