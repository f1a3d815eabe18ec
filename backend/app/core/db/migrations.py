"""What both Alembic trees share: an async `env.py` scoped to one database's metadata.

Each tree keeps its own version table, so both can live in one database in
single-URL mode, and autogenerate only ever sees the tables of its own metadata.
"""

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import URL, Connection

from app.core.config import DatabaseName, Settings
from app.core.db.engines import create_engine_for
from app.core.db.revisions import version_table_name
from app.core.db.types import ExactString, Money, UTCDateTime


def run_migrations(database: DatabaseName, metadata: MetaData) -> None:
    """Entry point of `alembic_<database>/env.py`."""
    config = context.config
    if config.config_file_name and config.attributes.get("configure_logging", True):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    # Tests pass a URL; everywhere else it comes from the same settings as the app,
    # so alembic.ini never holds credentials.
    url: URL = config.attributes.get("database_url") or Settings().resolved_database_url(database)
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": version_table_name(database),
        "include_name": _only_tables_of(metadata),
        "render_as_batch": url.get_backend_name() == "sqlite",
        "compare_type": True,
        "render_item": _render_item,
    }
    if context.is_offline_mode():
        context.configure(
            url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, options))


async def _run_online(url: URL, options: dict[str, Any]) -> None:
    engine = create_engine_for(url, Settings(), pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_on_connection, options)
    finally:
        await engine.dispose()


def _run_on_connection(connection: Connection, options: dict[str, Any]) -> None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


def _only_tables_of(metadata: MetaData) -> Any:
    def include_name(name: str | None, type_: str, _parents: dict[str, str | None]) -> bool:
        # Tables of the other tree (and its version table) are not ours to drop.
        return type_ != "table" or name in metadata.tables

    return include_name


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations spell our column types in plain SQLAlchemy, so that they never
    # import application code that may change after they were written.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return "sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), 'mysql')"
    if type_ == "type" and isinstance(obj, Money):
        return "sa.Numeric(12, 2).with_variant(sa.BigInteger(), 'sqlite')"
    if type_ == "type" and isinstance(obj, ExactString):
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return (
            f"sa.String(length={obj.length})"
            f".with_variant(mysql.VARBINARY(length={obj.length}), 'mysql')"
        )
    return False
