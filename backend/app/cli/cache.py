"""The cache: `cache gc` and `cache clear`, on the store CACHE_STORE names."""

from collections.abc import Awaitable, Callable

import typer

from app.cli.runner import run
from app.core.config import Settings
from app.core.db.registry import Databases
from app.essentials.cache.facade import Cache
from app.essentials.cache.factory import create_cache


def register(cli: typer.Typer) -> None:
    commands = typer.Typer(no_args_is_help=True, help="The cache (CACHE_STORE, CACHE_PREFIX).")
    commands.command("gc")(gc)
    commands.command("clear")(clear)
    cli.add_typer(commands, name="cache")


def on_cache(settings: Settings, work: Callable[[Cache], Awaitable[int]]) -> int:
    """Run `work` on the configured cache, closed afterwards."""

    async def main(databases: Databases) -> int:
        cache = create_cache(settings, databases)
        try:
            return await work(cache)
        finally:
            await cache.close()

    return run(main)


def gc() -> None:
    """Remove every expired entry and lock now, in batches.

    Writes also remove expired rows as they go, and Redis expires keys itself.
    """
    removed = on_cache(Settings(), lambda cache: cache.gc())
    typer.echo(f"removed {removed} expired cache entries")


def clear() -> None:
    """Remove every entry under CACHE_PREFIX; other prefixes, and locks, stay."""
    settings = Settings()
    removed = on_cache(settings, lambda cache: cache.flush())
    typer.echo(f"removed {removed} cache entries under the prefix {settings.cache_prefix!r}")
