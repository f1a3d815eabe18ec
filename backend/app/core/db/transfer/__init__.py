"""Moving a database's data: `python -m app.cli copy-database`, `backup`, `restore`.

- `keyset`: reading a whole table in primary-key batches;
- `checksums`: row counts and checksums that agree across backends;
- `identities`: id counters set past the ids written explicitly;
- `copying`: one database's tables copied to another database, resumably, verified;
- `dumps`, `sqlite_backups`, `backups`: a database backed up with its backend's own
  tool, and restored.
"""
