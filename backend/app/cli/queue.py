"""The job queue: `queue work`, `status`, `failed`, `retry`, `forget`, `flush`,
`prune-failed`."""

import asyncio
import importlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from app.cli.runner import run
from app.cli.schedule import DEFAULT_SCHEDULE, ScheduleOption, load_schedule, plan
from app.core.config import Settings
from app.core.db.registry import Databases
from app.core.observability.logging import configure_logging
from app.essentials.queue.jobs import JobRegistry
from app.essentials.queue.queue import Queue, create_queue
from app.essentials.queue.worker import Chore, Worker
from app.essentials.schedule.scheduler import TICK, Scheduler
from app.essentials.schedule.tasks import PlannedTask, Schedule
from app.runtime import create_runtime

T = TypeVar("T")
logger = logging.getLogger(__name__)

queue_cli = typer.Typer(
    no_args_is_help=True, help="Background jobs: run a worker, see and retry failed jobs."
)


def register(cli: typer.Typer) -> None:
    cli.add_typer(queue_cli, name="queue")


def on_queue(work: Callable[[Queue], Awaitable[T]]) -> T:
    """Run `work` on the configured queue (see `run`)."""

    async def on(databases: Databases) -> T:
        queue = create_queue(Settings(), databases)
        try:
            return await work(queue)
        finally:
            await queue.close()

    return run(on)


@queue_cli.command()
def work(
    queue: Annotated[
        str, typer.Option(help="Queues to take jobs from, comma-separated, by priority.")
    ] = "default",
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=1000, help="Jobs run at once [default: QUEUE_CONCURRENCY]."),
    ] = None,
    stop_when_empty: Annotated[
        bool, typer.Option("--stop-when-empty", help="Stop once no job is ready or running.")
    ] = False,
    jobs: Annotated[
        str, typer.Option(help="The registry of jobs to run, as module:attribute.")
    ] = "app.jobs:JOBS",
    no_schedule: Annotated[
        bool,
        typer.Option(
            "--no-schedule", help="Do not run the scheduler here (SCHEDULE_IN_WORKER=false)."
        ),
    ] = False,
    schedule: ScheduleOption = DEFAULT_SCHEDULE,
) -> None:
    """Run jobs until SIGTERM or SIGINT: then take no new job, give the running ones
    QUEUE_SHUTDOWN_GRACE_SECONDS, and hand back the rest (a second signal: at once).

    Unless told not to, or stopping when empty, it also runs the scheduler, when its
    registry holds the schedule's job."""
    settings = Settings()
    configure_logging(settings)
    registry = load_registry(jobs)
    queues = [name.strip() for name in queue.split(",") if name.strip()]
    if not queues:
        raise typer.BadParameter("name at least one queue", param_hint="--queue")
    concurrency = concurrency or settings.queue_concurrency
    scheduled: tuple[Schedule, list[PlannedTask]] | None = None
    if settings.schedule_in_worker and not (no_schedule or stop_when_empty):
        loaded = load_schedule(schedule)
        if registry.get(loaded.job.name) is loaded.job:
            scheduled = loaded, plan(loaded, settings)
    asyncio.run(_work(settings, registry, queues, concurrency, stop_when_empty, scheduled))


async def _work(
    settings: Settings,
    registry: JobRegistry,
    queues: list[str],
    concurrency: int,
    stop_when_empty: bool,
    scheduled: tuple[Schedule, list[PlannedTask]] | None,
) -> None:
    runtime = create_runtime(settings)
    chores = [Chore("outbox relay", settings.outbox_relay_interval, runtime.outbox.relay_pending)]
    if scheduled is not None:
        scheduler = Scheduler(*scheduled, runtime.databases, runtime.queue)
        chores.append(Chore("scheduler", TICK, scheduler.tick))
        logger.info("running the scheduler: %s tasks", len(scheduler.plans))
    worker = Worker(
        runtime.job_services,
        registry,
        queues=queues,
        concurrency=concurrency,
        stop_when_empty=stop_when_empty,
        chores=chores,
    )
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        worker.stop(now=signals > 1)

    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal)
    try:
        await worker.run()
    finally:
        await runtime.queue.close()
        await runtime.databases.dispose()


def load_registry(path: str) -> JobRegistry:
    module_name, _, attribute = path.partition(":")
    try:
        registry = getattr(importlib.import_module(module_name), attribute or "JOBS")
    except (ImportError, AttributeError) as missing:
        raise typer.BadParameter(f"cannot load {path}: {missing}", param_hint="--jobs") from None
    if not isinstance(registry, JobRegistry):
        raise typer.BadParameter(f"{path} is not a JobRegistry", param_hint="--jobs")
    return registry


@queue_cli.command()
def status() -> None:
    """Jobs per queue: ready, delayed (waiting for their time), running, failed."""

    async def read(queue: Queue) -> None:
        counts = await queue.status()
        workers = await queue.workers()
        typer.echo(f"{'queue':<24} {'ready':>8} {'delayed':>8} {'running':>8} {'failed':>8}")
        for row in counts:
            typer.echo(
                f"{row.queue:<24} {row.ready:>8} {row.delayed:>8} {row.running:>8} {row.failed:>8}"
            )
        typer.echo(f"{len(workers)} workers alive")
        for worker in workers:
            typer.echo(
                f"  worker {worker.id}: {worker.hostname} pid {worker.pid}, queues "
                f"{worker.queues}, concurrency {worker.concurrency}, last heartbeat "
                f"{worker.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            )

    on_queue(read)


@queue_cli.command()
def failed(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many to list.")] = 20,
) -> None:
    """Failed jobs, newest first: id, time, job, queue, attempts, and the error."""

    async def read(queue: Queue) -> None:
        rows = await queue.failed(limit=limit)
        if not rows:
            typer.echo("no failed jobs")
        for row in rows:
            error = row.exception.strip().rsplit("\n", 1)[-1]
            typer.echo(
                f"{row.id}  {row.failed_at:%Y-%m-%d %H:%M:%S}  {row.name}  queue {row.queue}  "
                f"attempts {row.attempts}/{row.max_attempts}  uuid {row.uuid}\n    {error}"
            )

    on_queue(read)


@queue_cli.command()
def retry(
    failed_id: Annotated[str, typer.Argument(metavar="ID|all", help="A failed job's id, or all.")],
) -> None:
    """Enqueue a failed job again (or all of them), with its attempts restored."""
    which = None if failed_id == "all" else _parse_id(failed_id)
    retried = on_queue(lambda queue: queue.retry(which))
    if which is not None and not retried:
        typer.echo(f"error: no failed job has the id {which}", err=True)
        raise typer.Exit(1)
    typer.echo(f"retried {retried} jobs")


@queue_cli.command()
def forget(
    failed_id: Annotated[str, typer.Argument(metavar="ID", help="A failed job's id.")],
) -> None:
    """Delete a failed job without running it."""
    which = _parse_id(failed_id)
    if not on_queue(lambda queue: queue.forget(which)):
        typer.echo(f"error: no failed job has the id {which}", err=True)
        raise typer.Exit(1)
    typer.echo(f"forgot failed job {which}")


@queue_cli.command()
def flush() -> None:
    """Delete every failed job."""
    typer.echo(f"deleted {on_queue(lambda queue: queue.flush())} failed jobs")


@queue_cli.command("prune-failed")
def prune_failed(
    days: Annotated[
        int | None,
        typer.Option(
            min=0, help="Older than this many days [default: QUEUE_FAILED_RETENTION_DAYS]."
        ),
    ] = None,
) -> None:
    """Delete the failed jobs, and the finished batches, older than --days, in batches."""
    kept = days if days is not None else Settings().queue_failed_retention_days
    typer.echo(f"removed {on_queue(lambda queue: queue.prune_failed(days=kept))}")


def _parse_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) < 2**63:
        raise typer.BadParameter(f"{text!r} is not a failed job's id", param_hint="ID")
    return int(text)
