"""The activity log: `activity prune`."""

from typing import Annotated

import typer

from app.cli.runner import run
from app.core.config import Settings
from app.essentials.activity.service import prune as prune_entries


def register(cli: typer.Typer) -> None:
    commands = typer.Typer(no_args_is_help=True, help="The activity log (activity_log).")
    commands.command("prune")(prune)
    cli.add_typer(commands, name="activity")


def prune(
    days: Annotated[
        int | None,
        typer.Option(min=1, help="Keep this many days [default: ACTIVITY_RETENTION_DAYS]."),
    ] = None,
) -> None:
    """Remove the entries older than DAYS days, in batches of 1,000."""
    kept = days if days is not None else Settings().activity_retention_days
    removed = run(lambda databases: prune_entries(databases, kept))
    typer.echo(f"removed {removed} activity entries older than {kept} days")
