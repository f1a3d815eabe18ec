"""The scheduler: a task's job is enqueued at its time, once per occurrence, however
many schedulers run at once; `schedule run`, `schedule list` and the worker's own.

Schedulers here are given the time (`tick(now=...)`) where a test is about when
things fall due; everything else runs for real: the databases, the queue, other
processes.
"""

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select

from app.auth.models import CredentialChange
from app.core.config import Settings
from app.core.db.registry import Databases, create_databases
from app.core.db.types import utc_now
from app.essentials.queue.context import JobContext, JobServices
from app.essentials.queue.jobs import JobRegistry
from app.essentials.queue.models import FailedJob, QueuedJob
from app.essentials.queue.queue import create_queue
from app.essentials.schedule.models import ScheduledRun
from app.essentials.schedule.runs import prune_runs
from app.essentials.schedule.scheduler import Scheduler
from app.essentials.schedule.tasks import Schedule, ScheduleError, Task
from app.schedule import SCHEDULE
from tests.conftest import cli_environment, empty_tables, run_cli
from tests.processes import CliProcess
from tests.queue_support import drain, wait_for

NIGHT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # a night; the task runs at 03:17
AT_317 = NIGHT.replace(minute=17)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)

ran: list[str] = []  # the occurrences the test task ran, in this process


async def nightly(ctx: JobContext) -> None:
    """Records its run."""
    ran.append(ctx.uuid)


async def broken(ctx: JobContext) -> None:
    raise RuntimeError("the task broke")


def schedule_of(*tasks: Task) -> Schedule:
    return Schedule(tasks, job_name="tests.schedule.run")


NIGHTLY = schedule_of(Task("tests.nightly", "17 3 * * *", nightly, catch_up=False))


@pytest.fixture
async def services(app: FastAPI) -> AsyncIterator[JobServices]:
    ran.clear()
    yield app.state.runtime.job_services
    await empty_tables(app)


def scheduler(
    services: JobServices,
    schedule: Schedule = NIGHTLY,
    *,
    started: datetime = NIGHT,
    databases: Databases | None = None,
) -> Scheduler:
    databases = databases or services.databases
    plans = schedule.plan(services.settings)
    return Scheduler(
        schedule, plans, databases, create_queue(services.settings, databases), started=started
    )


async def count(databases: Databases, model: Any, *where: Any) -> int:
    async with databases.auth.engine.connect() as connection:
        query = select(func.count()).select_from(model).where(*where)
        return int(await connection.scalar(query) or 0)


async def work_off(services: JobServices, schedule: Schedule = NIGHTLY) -> None:
    await drain(services, JobRegistry([schedule.job]))


def test_a_bad_cron_expression_or_task_name_fails_when_the_schedule_is_built() -> None:
    for expression, problem in (
        ("61 * * * *", "Bad minute"),
        ("every night", "Wrong number of fields"),
        ("0 0 30 2 *", "Bad day-of-month"),
    ):
        with pytest.raises(ScheduleError) as error:
            schedule_of(Task("tests.bad", expression, nightly))
        assert str(error.value).startswith(
            f"task tests.bad: {expression!r} is not a cron expression ({problem})"
        )
    with pytest.raises(ScheduleError, match=r"two tasks are named tests\.twice"):
        schedule_of(
            Task("tests.twice", "* * * * *", nightly), Task("tests.twice", "0 * * * *", nightly)
        )
    with pytest.raises(ScheduleError, match="'Nightly Task' cannot name a task"):
        schedule_of(Task("Nightly Task", "* * * * *", nightly))


async def test_a_task_is_enqueued_at_its_time_not_before_and_once(services: JobServices) -> None:
    one = scheduler(services)

    assert await one.tick(now=AT_317 - SECOND) == []
    assert await count(services.databases, ScheduledRun) == 0
    assert await count(services.databases, QueuedJob) == 0

    assert await one.tick(now=AT_317) == [("tests.nightly", AT_317)]
    assert await one.tick(now=AT_317 + 30 * SECOND) == []
    assert await one.tick(now=AT_317 + DAY - SECOND) == []
    await work_off(services)
    assert len(ran) == 1

    assert await one.tick(now=AT_317 + DAY + SECOND / 2) == [("tests.nightly", AT_317 + DAY)]
    await work_off(services)
    assert len(ran) == 2
    assert await count(services.databases, ScheduledRun) == 2


async def test_three_schedulers_at_once_enqueue_each_occurrence_once(
    services: JobServices,
) -> None:
    settings = services.settings
    own = [create_databases(settings) for _ in range(3)]  # three processes' pools
    try:
        schedulers = [scheduler(services, databases=databases) for databases in own]
        for night in range(5):
            due = AT_317 + night * DAY
            taken = await asyncio.gather(*(each.tick(now=due) for each in schedulers))
            assert sorted(len(occurrences) for occurrences in taken) == [0, 0, 1]
    finally:
        for databases in own:
            await databases.dispose()

    assert await count(services.databases, ScheduledRun) == 5
    assert await count(services.databases, QueuedJob) == 5
    await work_off(services)
    assert len(set(ran)) == len(ran) == 5


async def test_a_missed_occurrence_runs_once_when_a_scheduler_starts_only_the_latest(
    services: JobServices,
) -> None:
    catching_up = schedule_of(Task("tests.nightly", "17 3 * * *", nightly))
    first = scheduler(services, catching_up, started=NIGHT)
    assert await first.tick(now=AT_317) == [("tests.nightly", AT_317)]

    # No scheduler ran for three nights; one starts at ten in the morning.
    morning = AT_317 + 3 * DAY + timedelta(hours=7)
    late = scheduler(services, catching_up, started=morning)
    assert await late.tick(now=morning) == [("tests.nightly", AT_317 + 3 * DAY)]
    again = scheduler(services, catching_up, started=morning + SECOND)
    assert await again.tick(now=morning + SECOND) == []

    # A task that does not catch up waits for its next time.
    skipping = scheduler(services, NIGHTLY, started=morning + 2 * DAY)
    assert await skipping.tick(now=morning + 2 * DAY) == []

    await work_off(services, catching_up)
    assert len(ran) == 2


async def test_a_task_that_fails_ends_in_failed_jobs_with_its_name(
    services: JobServices,
) -> None:
    failing = schedule_of(Task("tests.broken", "17 3 * * *", broken, max_attempts=1))
    assert await scheduler(services, failing).tick(now=AT_317) == [("tests.broken", AT_317)]

    await work_off(services, failing)

    async with services.databases.auth.engine.connect() as connection:
        row = (
            await connection.execute(select(FailedJob.name, FailedJob.payload, FailedJob.exception))
        ).one()
    assert row.name == "tests.schedule.run"
    assert json.loads(row.payload) == {"task": "tests.broken", "run_at": AT_317.isoformat()}
    assert "RuntimeError: the task broke" in row.exception


async def test_old_runs_are_pruned_but_each_task_keeps_its_latest(services: JobServices) -> None:
    now = utc_now()
    async with services.databases.auth.engine.begin() as connection:
        await connection.execute(
            insert(ScheduledRun),
            [
                {"task": task, "run_at": now - days * DAY, "job_uuid": f"{task}-{days}"}
                for task, days in (("monthly", 62), ("monthly", 31), ("daily", 32), ("daily", 1))
            ],
        )

    assert await prune_runs(services.databases, days=30) == 2

    async with services.databases.auth.engine.connect() as connection:
        kept = set(await connection.scalars(select(ScheduledRun.job_uuid)))
    assert kept == {"monthly-31", "daily-1"}


async def test_schedule_run_processes_enqueue_each_task_once_and_a_worker_runs_them(
    settings: Settings, services: JobServices
) -> None:
    databases = services.databases
    now = utc_now()
    async with databases.auth.engine.begin() as connection:
        await connection.execute(insert(CredentialChange).values(created_at=now - 2 * DAY))

    # Three schedulers start at once; every task is due (its latest occurrence never ran).
    started = await asyncio.gather(
        *(run_cli(settings, "schedule", "run", "--once") for _ in range(3))
    )

    assert [result.returncode for result in started] == [0, 0, 0], started[0].stderr
    enqueued = [line for result in started for line in result.stdout.splitlines()]
    assert sorted(line.split()[1] for line in enqueued) == sorted(task.name for task in SCHEDULE)
    assert await count(databases, ScheduledRun) == len(list(SCHEDULE))
    assert await count(databases, QueuedJob, QueuedJob.name == "schedule.run") == len(
        list(SCHEDULE)
    )

    worker = await run_cli(settings, "queue", "work", "--stop-when-empty")

    assert worker.returncode == 0, worker.stderr
    assert "task sessions.cleanup of" in worker.stderr
    assert await count(databases, QueuedJob) == 0
    assert await count(databases, FailedJob) == 0
    assert await count(databases, CredentialChange) == 0  # sessions.cleanup ran


async def test_a_long_running_worker_runs_the_scheduler(
    settings: Settings, services: JobServices, tmp_path: Path
) -> None:
    worker = start(settings, tmp_path, "queue", "work")
    try:
        await wait_for(every_task_ran(services.databases), within=60)
    finally:
        worker.signal(signal.SIGTERM)
    output = await worker.finished()
    assert worker.returncode == 0, output
    assert output.count("enqueued task") == len(list(SCHEDULE))
    assert await count(services.databases, FailedJob) == 0


async def test_a_schedule_run_process_enqueues_for_workers_told_not_to_schedule(
    settings: Settings, services: JobServices, tmp_path: Path
) -> None:
    scheduler = start(settings, tmp_path, "schedule", "run")
    worker = start(settings, tmp_path, "queue", "work", "--no-schedule")
    try:
        await wait_for(every_task_ran(services.databases), within=60)
    finally:
        for process in (scheduler, worker):
            process.signal(signal.SIGTERM)
    scheduled, worked = [await process.finished() for process in (scheduler, worker)]
    assert (scheduler.returncode, worker.returncode) == (0, 0), scheduled + worked
    assert scheduled.count("enqueued task") == len(list(SCHEDULE))
    assert "enqueued task" not in worked
    assert worked.count("done in") == len(list(SCHEDULE))


def every_task_ran(databases: Databases) -> Callable[[], Awaitable[bool]]:
    async def ran() -> bool:
        return (
            await count(databases, ScheduledRun) == len(list(SCHEDULE))
            and await count(databases, QueuedJob) == 0
        )

    return ran


def start(settings: Settings, logs: Path, *arguments: str) -> CliProcess:
    log = logs / f"{'-'.join(arguments)}.log"
    return CliProcess.start(arguments, cli_environment(settings, LOG_FORMAT="text"), log)


async def test_schedule_list_shows_each_task_its_next_and_last_run(
    settings: Settings, services: JobServices
) -> None:
    async with services.databases.auth.engine.begin() as connection:
        await connection.execute(
            insert(ScheduledRun).values(task="queue.prune_failed", run_at=AT_317, job_uuid="-")
        )
    overrides = json.dumps({"cache.gc": "off", "sessions.cleanup": "0 4 * * *"})

    result = await run_cli(settings, "schedule", "list", SCHEDULE_CRON=overrides)

    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["cache.gc"].split()[1:3] == ["off", "*"]
    assert lines["sessions.cleanup"].split()[1:7] == ["0", "4", "*", "*", "*", "*"]
    assert lines["sessions.cleanup"].split()[8] == "04:00"
    assert "2026-11-30 03:17" in lines["queue.prune_failed"]
    assert "Failed jobs and finished batches" in lines["queue.prune_failed"]
    assert result.stdout.endswith("* set by SCHEDULE_CRON\n")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"cache.gc": "every hour"},
            "error: task cache.gc: 'every hour' is not a cron expression (Wrong number of fields)",
        ),
        ({"nightly": "0 4 * * *"}, "error: SCHEDULE_CRON names nightly, which is no task"),
    ],
)
async def test_a_bad_schedule_cron_setting_stops_the_scheduler_and_the_worker_at_start(
    settings: Settings, services: JobServices, overrides: dict[str, str], message: str
) -> None:
    for command in (("schedule", "run"), ("queue", "work")):
        result = await run_cli(settings, *command, SCHEDULE_CRON=json.dumps(overrides))
        assert result.returncode == 1
        assert result.stderr.startswith(message)
    assert await count(services.databases, ScheduledRun) == 0
