"""The cache: one interface (`Cache`), three stores, chosen by CACHE_STORE.

- `facade`: `Cache`, what the code uses (get, put, add, forget, many, flush, remember,
  increment/decrement, locks), and `Lock`;
- `store`: what a store does (`Store`), the clock, the errors;
- `database` (+ `statements`, `models`): the tables `cache` and `cache_locks` of the auth
  database, the default;
- `redis_store`: Redis, for workers on several machines; `memory`: one process;
- `limits`: fixed-window rate limits counted in the cache;
- `stickiness`: read-your-writes across workers, for the replica routing;
- `factory`: `create_cache(settings, databases)`; `dependencies`: `CacheDep`.
"""
