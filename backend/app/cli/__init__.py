"""Management commands: `python -m app.cli --help` from backend/.

Each module adds the commands of one concern to `cli`; `run` gives every command the
databases of the configured settings, and turns a domain error into a message.
"""

from app.cli import (
    accounts,
    activity,
    backups,
    cache,
    copying,
    databases,
    notifications,
    queue,
    schedule,
    sessions,
)
from app.cli.runner import cli

accounts.register(cli)
databases.register(cli)
cache.register(cli)
queue.register(cli)
activity.register(cli)
notifications.register(cli)
schedule.register(cli)
sessions.register(cli)
copying.register(cli)
backups.register(cli)

__all__ = ["cli"]
