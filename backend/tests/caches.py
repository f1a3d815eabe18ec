"""The cache on each of its stores, for the contract suite and the tests of its users.

A `Target` is one store on a real server: memory, the database store on SQLite,
PostgreSQL and MariaDB (an auth database migrated for it), or Redis.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.core.db.registry import Databases, create_databases
from app.essentials.cache.database import DatabaseStore
from app.essentials.cache.facade import Cache
from app.essentials.cache.factory import create_cache
from app.essentials.cache.memory import MemoryStore
from tests.conftest import (
    SELECTED,
    TEST_SECRET,
    drop_test_keys,
    make_settings,
    migrate,
    open_redis,
    open_server,
    unique_prefix,
    url_string,
)

STORES = ["memory", *SELECTED, "redis"]


def on_redis(settings: Settings, redis_url: str) -> Settings:
    """`settings` with the cache in Redis, under a prefix of its own."""
    return settings.model_copy(
        update={
            "cache_store": "redis",
            "redis_url": SecretStr(redis_url),
            "cache_prefix": unique_prefix(),
        }
    )


@dataclass
class Target:
    name: str
    settings: Settings
    databases: Databases

    @property
    def shared(self) -> bool:
        """Whether two processes share this store (all but memory)."""
        return self.name != "memory"

    @property
    def is_database(self) -> bool:
        return self.name not in ("memory", "redis")

    def cache(self, prefix: str | None = None, **store_options: Any) -> Cache:
        """A cache on this store, under a prefix of its own unless one is given;
        `store_options` go to the database store (`gc_every`, `gc_batch`)."""
        prefix = prefix or unique_prefix()
        if store_options:
            return Cache(DatabaseStore(self.databases.auth, prefix, **store_options))
        settings = self.settings.model_copy(update={"cache_prefix": prefix})
        return create_cache(settings, self.databases)

    def beside(self, cache: Cache) -> Cache:
        """A second cache on the same store and prefix, as another worker would have:
        on memory, sharing the first one's dictionaries."""
        if isinstance(cache.store, MemoryStore):
            return Cache(cache.store)
        return self.cache(cache.prefix)

    def environment(self, prefix: str) -> dict[str, str]:
        """The environment of a process that uses this store under `prefix`."""
        values = {
            "CACHE_STORE": self.settings.cache_store,
            "CACHE_PREFIX": prefix,
            "REDIS_URL": self.settings.redis_url.get_secret_value(),
            "ENVIRONMENT": "test",
            "SECRET_KEY": TEST_SECRET,
            "AUTH_DB_POOL_SIZE": str(self.settings.auth_db_pool_size),
            "APP_DB_POOL_SIZE": str(self.settings.app_db_pool_size),
            "DB_MAX_OVERFLOW": str(self.settings.db_max_overflow),
        }
        if self.settings.database_url is not None:
            values["DATABASE_URL"] = self.settings.database_url.get_secret_value()
        return {**os.environ, **values}


@asynccontextmanager
async def open_target(
    name: str, tmp_path_factory: pytest.TempPathFactory, database: str = "dualbase_cache"
) -> AsyncIterator[Target]:
    """The store `name`; a database store gets a migrated auth database named `database`."""
    # Memory and Redis need no database; theirs stay unused files in a temporary folder.
    data_dir = tmp_path_factory.mktemp("cache")
    if name == "memory":
        settings = make_settings(cache_store="memory", data_dir=data_dir)
    elif name == "redis":
        settings = make_settings(
            cache_store="redis", redis_url=await open_redis(), data_dir=data_dir
        )
    else:
        server = await open_server(name, tmp_path_factory)
        url = await server.create_database(database)
        await migrate("auth", url)
        settings = make_settings(
            cache_store="database",
            database_url=url_string(url),
            # A pool that keeps few connections open between tests, and may reach 20 in
            # the races: the server's connections are shared with every other test run.
            auth_db_pool_size=4,
            app_db_pool_size=4,
            db_max_overflow=12,
        )
    databases = create_databases(settings)
    try:
        yield Target(name, settings, databases)
    finally:
        await databases.dispose()
        if name == "redis":
            await drop_test_keys(settings.redis_url.get_secret_value())
        elif name != "memory" and not server.is_sqlite:
            for database in server.created:
                await server.drop_database(database)
