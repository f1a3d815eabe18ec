"""In-app notifications, and mail, for a user: declare a `Notification`, `notify` it.

- `notification`: `Notification`, the base of every kind (its channels and renderings);
- `sending`: `notify`, `notify_within`, `notify_staged`: through the queue, never inline;
- `jobs`: the jobs that write the rows and send the mail, and the announcement batch;
- `models`: the `notifications` table (auth database);
- `service`: the inbox (pages, unread count, read, delete) and the prune;
- `router`: /api/v1/notifications, built by `create_router` (the essentials cannot import
  `app.auth`: `app/main.py` hands over the dependencies that name the caller).
"""
