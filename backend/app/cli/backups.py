"""Backups: `backup` and `restore`, with the backend's own tools (`app.core.db.transfer.backups`).

A restore ends with the orphan check (`app.erasure`): one database restored older
than the other is how app rows come to belong to users the auth database never had.
"""

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from app import models
from app.cli.runner import run
from app.core.db.registry import Databases
from app.core.db.revisions import head
from app.core.db.transfer.backups import backup_database, restore_database
from app.erasure.orphans import find_orphans

Name = Annotated[models.Migrated, typer.Argument(help="The database: auth or app.")]


def register(cli: typer.Typer) -> None:
    cli.command("backup")(backup)
    cli.command("restore")(restore)


def backup(
    name: Name,
    to: Annotated[Path, typer.Option("--to", help="The backup file to write (a .tar.gz).")],
) -> None:
    """Back up a database's tables and Alembic revision with the backend's own tool
    (pg_dump, mariadb-dump, SQLite's online backup), with a manifest, in one file."""

    async def back_up(databases: Databases) -> None:
        manifest = await backup_database(name, models.METADATA[name], databases[name].engine, to)
        typer.echo(
            f"backed up {name} ({manifest.backend}, revision {manifest.revision}): "
            f"{len(manifest.tables)} tables, {manifest.rows:,} rows, with {manifest.tool_version}"
        )
        typer.echo(f"written to {to}")

    run(back_up)


def restore(
    name: Name,
    from_: Annotated[Path, typer.Option("--from", help="A file written by `backup`.")],
) -> None:
    """Replace a database's tables with a backup's, check the row counts against its
    manifest, then check for app rows whose owner is missing from the auth database."""

    async def restore_then_check(databases: Databases) -> None:
        manifest = await restore_database(
            name, models.METADATA[name], databases[name].engine, from_
        )
        typer.echo(
            f"restored {name} from {from_}: revision {manifest.revision}, taken "
            f"{manifest.created_at:%Y-%m-%d %H:%M:%S} UTC with {manifest.tool_version}; "
            f"{len(manifest.tables)} tables, {manifest.rows:,} rows, as the manifest says"
        )
        if manifest.revision != head(name):
            typer.echo(
                f"the code's newest revision is {head(name)}: migrate it "
                f"(alembic -n {name} upgrade head) before serving"
            )
        try:
            report = await find_orphans(databases)
        except SQLAlchemyError as error:
            typer.echo(
                f"orphan check: could not run ({type(error).__name__}); once both databases "
                "are migrated, run `python -m app.cli check-orphans`"
            )
            return
        if not report.missing_owner_ids:
            typer.echo("orphan check: no orphaned rows")
            return
        tables = ", ".join(
            f"{table} {rows}" for table, rows in sorted(report.rows_by_table.items()) if rows
        )
        typer.echo(
            f"orphan check: {report.total_rows} orphaned rows ({tables}), owned by "
            f"{len(report.missing_owner_ids)} users missing from the auth database; "
            "`python -m app.cli check-orphans --fix` deletes them"
        )

    run(restore_then_check)
