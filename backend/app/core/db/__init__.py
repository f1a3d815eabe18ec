"""Databases: one module per job.

- `types`: column types every backend stores alike (UTC timestamps, money, ids);
- `base`: `AuthBase` and `AppBase`, the two declarative bases, and shared mixins;
- `engines`: an async engine with this service's pool, ping and driver settings;
- `outages`: telling "the server is unreachable" from "the query is wrong";
- `registry`: the named databases of one process (`Databases`), built from settings;
- `sessions`: transactions and the request dependencies (`AuthDb`, `AppDb`);
- `queries`: small statements every domain needs (row counts);
- `migrations`: what both Alembic trees' `env.py` share.
"""
