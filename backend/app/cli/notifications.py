"""Notifications: `notifications prune`, the upkeep of the `notifications` table."""

from typing import Annotated

import typer

from app.cli.runner import run
from app.core.config import Settings
from app.essentials.notifications import service


def register(cli: typer.Typer) -> None:
    commands = typer.Typer(no_args_is_help=True, help="In-app notifications.")
    commands.command("prune")(prune)
    cli.add_typer(commands, name="notifications")


def prune(
    days: Annotated[
        int | None,
        typer.Option(
            min=0, help="Read more than this many days ago [NOTIFICATIONS_RETENTION_DAYS]"
        ),
    ] = None,
) -> None:
    """Delete the notifications read more than DAYS days ago, in batches; unread ones stay."""
    kept = days if days is not None else Settings().notifications_retention_days
    removed = run(lambda databases: service.prune(databases, days=kept))
    typer.echo(f"removed {removed} notifications read more than {kept} days ago")
