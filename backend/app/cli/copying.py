"""Moving a database elsewhere: `copy-database`.

The work is `app.core.db.transfer.copying`'s; this hands it the tables of the named database
(`app.models`) and its configured engine as the source.
"""

from typing import Annotated

import typer

from app import models
from app.cli.runner import run
from app.core.config import ConfigError, Settings, normalize_database_url
from app.core.db.engines import create_engine_for
from app.core.db.registry import Databases
from app.core.db.transfer.copying import CopyJob, copy_database


def register(cli: typer.Typer) -> None:
    cli.command("copy-database")(copy_database_command)


def copy_database_command(
    name: Annotated[models.Migrated, typer.Argument(help="The database to copy: auth or app.")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The target's URL: postgresql://..., mysql://..., mariadb://... or "
            "sqlite:///path. A new database, or one that holds an unfinished copy.",
            envvar="COPY_DATABASE_TO",
            show_envvar=True,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be copied; write nothing.")
    ] = False,
    drop_source: Annotated[
        bool,
        typer.Option(
            "--drop-source",
            help="Once every table is verified, drop the source's tables of this database "
            "(and its version table). Never when the target is the source.",
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per batch and commit.")] = 1000,
) -> None:
    """Copy a database's tables and Alembic revision to another database, any backend to
    any backend, then verify row counts and checksums. Run it again after an interruption:
    it continues where it stopped."""
    try:
        target_url = normalize_database_url("--to", to)
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    settings = Settings()

    async def copy(databases: Databases) -> None:
        source = databases[name].engine
        typer.echo(
            f"copy-database {name}: {source.url.render_as_string(hide_password=True)} -> "
            f"{target_url.render_as_string(hide_password=True)}"
        )
        target = create_engine_for(target_url, settings, pool_size=2)
        try:
            job = CopyJob(name, models.METADATA[name], source, target, batch_size)
            await copy_database(job, typer.echo, dry_run=dry_run, drop_source=drop_source)
        finally:
            await target.dispose()

    run(copy)
