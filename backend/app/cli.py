"""Management commands: `python -m app.cli --help` from backend/."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.database import create_databases, init_db, transaction
from app.core.errors import DomainError, NotFound
from app.erasure.orphans import delete_orphans, find_orphans
from app.erasure.service import erase_user, pending_erasures
from app.health.service import check_databases
from app.users import service as users_service
from app.users.schemas import UserCreate, normalize_email

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


@cli.command("create-superuser")
def create_superuser(
    email: Annotated[str, typer.Option(prompt=True, help="The superuser's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="8 to 128 characters; prompted for when not given.",
        ),
    ],
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create a superuser (who passes every permission check) with the admin role."""
    try:
        data = UserCreate(email=email, password=password, full_name=full_name)
    except ValidationError as invalid:
        for error in invalid.errors():
            typer.echo(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", err=True)
        raise typer.Exit(2) from None

    async def create(auth_db: AsyncSession) -> None:
        user = await users_service.create(auth_db, data, is_superuser=True)
        await users_service.assign_role(auth_db, user, "admin")

    _run_in_auth_db(create)
    typer.echo(f"superuser {data.email} created")


@cli.command("assign-role")
def assign_role(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    role: Annotated[str, typer.Argument(help="A role name, e.g. admin or member.")],
) -> None:
    """Give an existing user a role."""

    async def assign(auth_db: AsyncSession) -> None:
        user = await users_service.get_by_email(auth_db, str(normalize_email(email)))
        if user is None:
            raise NotFound("user")
        await users_service.assign_role(auth_db, user, role)

    _run_in_auth_db(assign)
    typer.echo(f"{email} now has the role {role}")


def _run_in_auth_db(work: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Run `work` in one auth-database transaction; domain errors become a message and exit 1."""

    async def run() -> None:
        databases = create_databases(Settings())
        try:
            async with transaction(databases, "auth") as auth_db:
                await work(auth_db)
        finally:
            await databases.dispose()

    try:
        asyncio.run(run())
    except DomainError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None


@cli.command("check-orphans")
def check_orphans(
    fix: Annotated[bool, typer.Option("--fix", help="Delete the orphaned rows.")] = False,
) -> None:
    """Report app rows whose owner no longer exists in the auth database."""

    async def run() -> None:
        databases = create_databases(Settings())
        try:
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
        finally:
            await databases.dispose()

    asyncio.run(run())


@cli.command("finish-erasures")
def finish_erasures() -> None:
    """Finish every user erasure that was interrupted (users marked as being deleted)."""

    async def run() -> int:
        databases = create_databases(Settings())
        try:
            async with transaction(databases, "auth") as auth_db:
                pending = await pending_erasures(auth_db)
            for user_id in pending:
                await erase_user(databases, user_id)
            return len(pending)
        finally:
            await databases.dispose()

    typer.echo(f"finished {asyncio.run(run())} erasures")


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
