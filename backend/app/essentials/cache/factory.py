"""`create_cache`: the cache that `CACHE_STORE` names, built once per process."""

from app.core.config import Settings
from app.core.db.registry import Databases
from app.essentials.cache.database import DatabaseStore
from app.essentials.cache.facade import Cache
from app.essentials.cache.memory import MemoryStore
from app.essentials.cache.store import Store


def create_cache(settings: Settings, databases: Databases) -> Cache:
    """The configured cache. Nothing connects yet: a store that is down shows on use."""
    store: Store
    if settings.cache_store == "redis":
        # Imported only when configured: redis-py is a sixth of a worker's start-up.
        from redis.asyncio import Redis

        from app.essentials.cache.redis_store import RedisStore

        client = Redis.from_url(
            settings.redis_url.get_secret_value(),
            decode_responses=True,
            socket_connect_timeout=settings.db_connect_timeout,
            socket_timeout=settings.db_connect_timeout,
        )
        store = RedisStore(client, settings.cache_prefix)
    elif settings.cache_store == "memory":
        store = MemoryStore(settings.cache_prefix)
    else:
        store = DatabaseStore(databases.auth, settings.cache_prefix)
    return Cache(store)
