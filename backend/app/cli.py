"""Management commands: `python -m app.cli --help` from backend/."""

import asyncio
import time
from typing import Annotated

import typer

from app.core.config import Settings
from app.core.database import create_databases, init_db
from app.health.service import check_databases

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Dualbase management commands.")


@cli.command("wait-for-databases")
def wait_for_databases(
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 60.0,
) -> None:
    """Wait until both databases answer (used before migrating in a container)."""
    asyncio.run(_wait_for_databases(Settings(), timeout))


async def _wait_for_databases(settings: Settings, give_up_after: float) -> None:
    databases = create_databases(settings)
    deadline = time.monotonic() + give_up_after
    try:
        while True:
            statuses = await check_databases(databases, settings.health_check_timeout)
            down = [name for name, status in statuses.items() if status.status == "down"]
            if not down:
                typer.echo("both databases answer")
                return
            if time.monotonic() >= deadline:
                typer.echo(
                    f"gave up after {give_up_after:g} s; not answering: {', '.join(down)}", err=True
                )
                raise typer.Exit(1)
            typer.echo(f"waiting for: {', '.join(down)}", err=True)
            await asyncio.sleep(1)
    finally:
        await databases.dispose()


@cli.command("init-db")
def init_db_command() -> None:
    """Create every table directly, without Alembic (quick experiments only)."""

    async def run() -> None:
        databases = create_databases(Settings())
        try:
            await init_db(databases)
        finally:
            await databases.dispose()

    asyncio.run(run())
    typer.echo("tables created in both databases")


if __name__ == "__main__":
    cli()
