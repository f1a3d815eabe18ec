"""Databases: one module per job.

- `types`: column types every backend stores alike (UTC timestamps, money, ids);
- `base`: `AuthBase` and `AppBase`, the two declarative bases; `AuthSession` and
  `AppSession`, the two session classes; shared mixins;
- `engines`: an async engine with this service's pool and driver settings;
- `liveness`: dead pooled connections found at checkout, mostly without a round trip;
- `failures`: what a driver's error means (outage, read-only refusal, lost deadlock);
- `registry`: the named databases of one process (`Databases`), built from settings;
- `routing`: where a request's statements go (autocommit reads, replicas, read-your-writes);
- `sessions`: transactions, `on_commit`, and the request dependencies (`AuthDb`, `AppDb`);
- `reads`: `AppReads`, `AuthReads`: the rows of a GET's list, read without a session;
- `integrity`: `integrity_session`, the transaction of scripts and workers;
- `queries`: small statements every domain needs (row counts);
- `migrations`, `revisions`: what both Alembic trees' `env.py` share; the revision a
  database is at, and whether the code knows it;
- `transfer/`: moving data: copying a database to another, backups and restores.
"""
