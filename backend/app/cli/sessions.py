"""Login sessions: `sessions cleanup`."""

import typer

from app.auth.cleanup import cleanup_sessions
from app.cli.runner import run
from app.core.config import Settings


def register(cli: typer.Typer) -> None:
    commands = typer.Typer(no_args_is_help=True, help="Login sessions and reset tokens.")
    commands.command("cleanup")(cleanup)
    cli.add_typer(commands, name="sessions")


def cleanup() -> None:
    """Remove login sessions and reset tokens ended more than SESSIONS_RETENTION_DAYS
    ago, and credential changes older than a day, in batches."""
    settings = Settings()
    removed = run(lambda databases: cleanup_sessions(databases, settings))
    typer.echo(f"removed {removed}")
