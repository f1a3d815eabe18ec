"""The outbox: messages written in an app-database transaction, and relayed to the
auth database afterwards, at least once and deduplicated by their uuid.

- `models`: `outbox_messages` (app database) and `outbox_receipts` (auth database);
- `outbox`: `Outbox`, which stages messages and relays them to a handler per kind;
- `dependencies`: `OutboxDep`, the process's outbox in a request.
"""
