"""The scheduler: `schedule list` and `schedule run`."""

import asyncio
import importlib
import signal
from datetime import datetime
from typing import Annotated

import typer

from app.cli.runner import run
from app.core.config import Settings
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.core.observability.logging import configure_logging
from app.essentials.schedule import runs
from app.essentials.schedule.scheduler import Scheduler
from app.essentials.schedule.tasks import PlannedTask, Schedule, ScheduleError
from app.runtime import create_runtime

schedule_cli = typer.Typer(
    no_args_is_help=True, help="Recurring tasks (app/schedule.py): list them, run a scheduler."
)

ScheduleOption = Annotated[
    str, typer.Option("--schedule", help="The schedule, as module:attribute.")
]
DEFAULT_SCHEDULE = "app.schedule:SCHEDULE"


def register(cli: typer.Typer) -> None:
    cli.add_typer(schedule_cli, name="schedule")


def load_schedule(path: str) -> Schedule:
    module_name, _, attribute = path.partition(":")
    try:
        schedule = getattr(importlib.import_module(module_name), attribute or "SCHEDULE")
    except (ImportError, AttributeError) as missing:
        message = f"cannot load {path}: {missing}"
        raise typer.BadParameter(message, param_hint="--schedule") from None
    if not isinstance(schedule, Schedule):
        raise typer.BadParameter(f"{path} is not a Schedule", param_hint="--schedule")
    return schedule


def plan(schedule: Schedule, settings: Settings) -> list[PlannedTask]:
    """The schedule's tasks under SCHEDULE_CRON; a mistake there stops the command."""
    try:
        return schedule.plan(settings)
    except ScheduleError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None


@schedule_cli.command("list")
def list_tasks(schedule: ScheduleOption = DEFAULT_SCHEDULE) -> None:
    """Each task: its cron expression (UTC), next run, last run, and what it does."""
    plans = plan(load_schedule(schedule), Settings())

    async def read(databases: Databases) -> dict[str, datetime]:
        async with databases.auth.autocommit() as connection:
            return await runs.latest(connection)

    last = run(read)
    now = utc_now()
    typer.echo(f"{'task':<24} {'cron (UTC)':<16} {'next run':<18} {'last run':<18} what")
    for planned in plans:
        following = planned.following(now)
        cron = planned.cron or "off"
        typer.echo(
            f"{planned.name:<24} {cron + (' *' if planned.overridden else ''):<16} "
            f"{_moment(following):<18} {_moment(last.get(planned.name)):<18} "
            f"{planned.task.summary}"
        )
    if any(planned.overridden for planned in plans):
        typer.echo("* set by SCHEDULE_CRON")


def _moment(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@schedule_cli.command("run")
def run_scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Enqueue what is due now, then stop.")
    ] = False,
    schedule: ScheduleOption = DEFAULT_SCHEDULE,
) -> None:
    """Enqueue each task's job when it falls due, until SIGTERM or SIGINT; workers run
    them. Any number may run at once (and every long-running `queue work` does unless
    SCHEDULE_IN_WORKER=false): each occurrence is enqueued once."""
    settings = Settings()
    configure_logging(settings)
    loaded = load_schedule(schedule)
    plans = plan(loaded, settings)
    asyncio.run(_run(settings, loaded, plans, once))


async def _run(
    settings: Settings, schedule: Schedule, plans: list[PlannedTask], once: bool
) -> None:
    runtime = create_runtime(settings)
    scheduler = Scheduler(schedule, plans, runtime.databases, runtime.queue)
    try:
        if once:
            for task, occurrence in await scheduler.tick():
                typer.echo(f"enqueued {task} of {occurrence:%Y-%m-%d %H:%M:%S} UTC")
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        await scheduler.run(stop)
    finally:
        await runtime.databases.dispose()
