"""What every command shares: the Typer app, and running async work on the databases."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from app.core.config import Settings
from app.core.db.registry import Databases, create_databases
from app.core.errors import DomainError

T = TypeVar("T")

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Dualbase management commands.")


def run(work: Callable[[Databases], Awaitable[T]]) -> T:
    """Run `work` on the configured databases, disposed of afterwards; a domain error
    (a user not found, a role unknown, a database down) becomes a message and exit 1."""

    async def main() -> T:
        databases = create_databases(Settings())
        try:
            return await work(databases)
        finally:
            await databases.dispose()

    try:
        return asyncio.run(main())
    except DomainError as error:
        typer.echo(f"error: {error.detail}", err=True)
        raise typer.Exit(1) from None
