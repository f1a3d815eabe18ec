"""Both databases: `wait-for-databases`, `init-db`, `check-orphans`, `finish-erasures`."""

import asyncio
import time
from typing import Annotated

import typer

from app import models
from app.cli.runner import run
from app.core.config import Settings
from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.erasure.orphans import delete_orphans, find_orphans
from app.erasure.service import erase_user, pending_erasures
from app.health.service import check_databases


def register(cli: typer.Typer) -> None:
    cli.command("wait-for-databases")(wait_for_databases)
    cli.command("init-db")(init_db)
    cli.command("check-orphans")(check_orphans)
    cli.command("finish-erasures")(finish_erasures)


def wait_for_databases(
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 60.0,
) -> None:
    """Wait until every configured database answers (used before migrating in a container)."""
    deadline = time.monotonic() + timeout
    check_timeout = Settings().health_check_timeout

    async def wait(databases: Databases) -> None:
        while True:
            statuses = await check_databases(databases, check_timeout)
            down = [name for name, status in statuses.items() if status.status == "down"]
            if not down:
                typer.echo(f"every database answers: {', '.join(statuses)}")
                return
            if time.monotonic() >= deadline:
                typer.echo(
                    f"gave up after {timeout:g} s; not answering: {', '.join(down)}", err=True
                )
                raise typer.Exit(1)
            typer.echo(f"waiting for: {', '.join(down)}", err=True)
            await asyncio.sleep(1)

    run(wait)


def init_db() -> None:
    """Create every table directly, without Alembic (quick experiments only)."""

    async def create(databases: Databases) -> None:
        for database, metadata in ((databases.auth, models.AUTH), (databases.app, models.APP)):
            async with database.engine.begin() as connection:
                await connection.run_sync(metadata.create_all)

    run(create)
    typer.echo("tables created in both databases")


def check_orphans(
    fix: Annotated[bool, typer.Option("--fix", help="Delete the orphaned rows.")] = False,
) -> None:
    """Report app rows whose owner no longer exists in the auth database."""

    async def check(databases: Databases) -> None:
        report = await find_orphans(databases)
        if not report.missing_owner_ids:
            typer.echo("no orphaned rows")
            return
        typer.echo(
            f"{report.total_rows} orphaned rows, owned by "
            f"{len(report.missing_owner_ids)} missing users"
        )
        for table, rows in sorted(report.rows_by_table.items()):
            typer.echo(f"  {table}: {rows}")
        if not fix:
            typer.echo("run again with --fix to delete them")
            raise typer.Exit(1)
        deleted = await delete_orphans(databases, report)
        typer.echo(f"deleted {sum(deleted.values())} rows")

    run(check)


def finish_erasures() -> None:
    """Finish every user erasure that was interrupted (users marked as being deleted)."""

    async def finish(databases: Databases) -> int:
        async with integrity_session(databases, "auth", "find pending erasures") as auth_db:
            pending = await pending_erasures(auth_db)
        for user_id in pending:
            await erase_user(databases, user_id)
        return len(pending)

    typer.echo(f"finished {run(finish)} erasures")
