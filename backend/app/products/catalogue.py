"""The catalogue as readers see it: read through the cache, and invalidated by every
committed write to a product, stock taken or put back by orders included.

Cached pages and products are filed under the catalogue's version, a counter in the
cache. A write bumps it once its transaction has committed (`on_commit`), so the next
read, on any worker, misses and reads the database. After the commit, not before: a
reader between the write and the commit would read the old row and cache it under the
new version. Entries also expire after `CACHE_SECONDS`, should a bump ever be lost.

Reads take an autocommit connection for their one statement, not the request's
session: no transaction is left open while the cache is written (on SQLite in
single-URL mode, the cache's writes would wait for it).
"""

from functools import partial
from typing import Any

from sqlalchemy import Row, select

from app.core.db.base import AppSession
from app.core.db.registry import Database
from app.core.db.sessions import on_commit
from app.essentials.cache.facade import Cache, Compute
from app.essentials.cache.store import CacheUnavailable
from app.products.models import Product
from app.products.schemas import ProductRead

VERSION = "products:version"
CACHE_SECONDS = 300


async def page(
    cache: Cache, app: Database[AppSession], *, limit: int, after_id: int | None
) -> list[ProductRead]:
    """Up to `limit` products after `after_id`, in id order."""
    query = select(Product.__table__).order_by(Product.id).limit(limit)
    if after_id is not None:
        query = query.where(Product.id > after_id)
    rows = await _through(cache, f"page:{limit}:{after_id or 0}", partial(_read, app, query))
    return [ProductRead.model_validate(row) for row in rows]


async def product(cache: Cache, app: Database[AppSession], product_id: int) -> ProductRead | None:
    query = select(Product.__table__).where(Product.id == product_id)
    # An id with no product is cached too (as an empty list): guessing ids costs no query.
    rows = await _through(cache, f"item:{product_id}", partial(_read, app, query))
    return ProductRead.model_validate(rows[0]) if rows else None


def changed(app_db: AppSession, cache: Cache) -> None:
    """The catalogue changes when `app_db`'s transaction commits: readers see it then."""
    on_commit(app_db, partial(_bump, cache))


async def _bump(cache: Cache) -> None:
    await cache.increment(VERSION)


async def _through(cache: Cache, name: str, read: Compute) -> Any:
    """`read()`'s rows, from the cache under the current version when they are there;
    from the database alone while the cache is unavailable."""
    try:
        version = await cache.get(VERSION, 0)
        return await cache.remember(f"products:v{version}:{name}", CACHE_SECONDS, read)
    except CacheUnavailable:
        return await read()


async def _read(app: Database[AppSession], query: Any) -> list[dict[str, Any]]:
    async with app.autocommit() as connection:
        rows: list[Row[Any]] = list(await connection.execute(query))
    return [ProductRead.model_validate(row).model_dump(mode="json") for row in rows]
