"""Databases: one module per job.

- `types`: column types every backend stores alike (UTC timestamps, money, ids);
- `base`: `AuthBase` and `AppBase`, the two declarative bases, and shared mixins;
- `engines`: an async engine with this service's pool, ping and driver settings;
- `outages`: telling "the server is unreachable" from "the query is wrong";
- `registry`: the named databases of one process (`Databases`), built from settings;
- `sessions`: transactions and the request dependencies (`AuthDb`, `AppDb`);
- `queries`: small statements every domain needs (row counts);
- `migrations`: what both Alembic trees' `env.py` share;
- `revisions`: the Alembic revision a database is at, and whether the code knows it;
- `keyset`: reading a whole table in primary-key batches;
- `checksums`: row counts and checksums that agree across backends;
- `identities`: id counters set past the ids written explicitly;
- `copying`: one database's tables copied to another database, resumably, verified;
- `dumps`, `sqlite_backups`, `backups`: a database backed up with its backend's own
  tool, and restored.
"""
