"""Who a notification can reach: the users of the auth database, read without `app.auth`.

The essentials sit below identity and cannot import its models; like the migrations,
they read the few columns they need through a lightweight table. A user whose erasure
has started is no longer anyone's recipient.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, String, column, select, table
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db.registry import Database

USERS = table(
    "users",
    column("id", BigInteger),
    column("email", String),
    column("is_active", Boolean),
    column("deleting_at", DateTime),
)


async def existing(connection: AsyncConnection, user_ids: Sequence[int]) -> list[int]:
    """Those of `user_ids` who still have an account (active or not)."""
    query = select(USERS.c.id).where(USERS.c.id.in_(user_ids), USERS.c.deleting_at.is_(None))
    return list(await connection.scalars(query))


async def addresses(auth: Database[Any], user_ids: Sequence[int]) -> list[tuple[int, str]]:
    """(user id, email) of those of `user_ids` who still have an account."""
    query = (
        select(USERS.c.id, USERS.c.email)
        .where(USERS.c.id.in_(user_ids), USERS.c.deleting_at.is_(None))
        .order_by(USERS.c.id)
    )
    return [(row.id, row.email) for row in await auth.read(query, {})]


async def active_ids(auth: Database[Any], *, after_id: int, limit: int) -> list[int]:
    """Up to `limit` active users after `after_id`, in id order (keyset, by primary key)."""
    query = (
        select(USERS.c.id)
        .where(USERS.c.id > after_id, USERS.c.is_active, USERS.c.deleting_at.is_(None))
        .order_by(USERS.c.id)
        .limit(limit)
    )
    return [row.id for row in await auth.read(query, {})]
