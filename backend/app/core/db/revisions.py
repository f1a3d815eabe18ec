"""Which Alembic revision a database is at, whether this code knows it, and migrating to it.

Each tree keeps its revision in a version table of its own (`alembic_version_auth`,
`alembic_version_app`), so that both trees can share one database. Copying, backing up
and restoring a database all start from its revision: the code can only read, and
migrate from, a revision its own migration tree holds.
"""

import asyncio

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, String, Table, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import BACKEND_DIR, DatabaseName


def version_table_name(name: DatabaseName) -> str:
    return f"alembic_version_{name}"


def version_table(name: DatabaseName) -> Table:
    """The version table as Alembic creates it, for reading and counting its row."""
    return Table(
        version_table_name(name),
        MetaData(),
        Column("version_num", String(32), primary_key=True),
    )


def alembic_config(name: DatabaseName, url: URL | None = None) -> Config:
    """The `[name]` section of alembic.ini; `url` points the migrations elsewhere than
    the configured database, and Alembic leaves the caller's logging alone."""
    config = Config(str(BACKEND_DIR / "alembic.ini"), ini_section=name)
    if url is not None:
        config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


def head(name: DatabaseName) -> str | None:
    """The newest revision of the tree: the one this code's models describe."""
    return ScriptDirectory.from_config(alembic_config(name)).get_current_head()


def is_known(name: DatabaseName, revision: str) -> bool:
    """Whether the tree holds `revision` itself (Alembic would also accept a prefix)."""
    script = ScriptDirectory.from_config(alembic_config(name))
    return any(known.revision == revision for known in script.walk_revisions())


async def current_revision(connection: AsyncConnection, name: DatabaseName) -> str | None:
    """The revision the database is at; None when it was never migrated.

    A tree with merged branches would hold several rows: they come back joined by `+`,
    which no revision is named, so such a database is never taken for a known one.
    """
    table = version_table(name)
    exists = await connection.run_sync(lambda sync: inspect(sync).has_table(table.name))
    if not exists:
        return None
    revisions = sorted((await connection.scalars(select(table.c.version_num))).all())
    return "+".join(revisions) or None


async def upgrade(name: DatabaseName, url: URL, revision: str) -> None:
    """`alembic -n <name> upgrade <revision>` against `url`.

    In a thread: the tree's env.py runs its own event loop.
    """
    await asyncio.to_thread(command.upgrade, alembic_config(name, url), revision)
