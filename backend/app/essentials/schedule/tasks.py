"""Recurring tasks: `Task` declares one, `Schedule` holds them and runs them as jobs.

    SCHEDULE = Schedule([
        Task("sessions.cleanup", "17 3 * * *", cleanup_sessions),
    ])

A task is an async function taking the `JobContext` (databases, settings, mailer,
queue); what it returns is logged. Its cron expression is read in UTC (six fields:
seconds first). Every task is run by one job, `schedule.run` (`Schedule.job`, listed
in `app/jobs.py`), with the task's name as argument: a task that fails is retried,
and ends in `failed_jobs`, as any job does.

A bad cron expression, two tasks of one name, or SCHEDULE_CRON naming a task that
does not exist, raise `ScheduleError` when the schedule is built or planned: at
start, not at 3 in the morning.
"""

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from cronsim import CronSim, CronSimError

from app.core.config import Settings
from app.essentials.queue.context import JobContext
from app.essentials.queue.jobs import DEFAULT_QUEUE, Job, JobMessage, job
from app.essentials.schedule.models import TASK_NAME_LENGTH

logger = logging.getLogger(__name__)

TaskFunction = Callable[[JobContext], Awaitable[object]]
OFF = "off"  # in SCHEDULE_CRON: the task does not run
_TASK_NAME = re.compile(rf"[a-z][a-z0-9_.-]{{0,{TASK_NAME_LENGTH - 1}}}")


class ScheduleError(ValueError):
    """A schedule that cannot run: the message names the task and what is wrong."""


@dataclass(frozen=True, slots=True)
class Task:
    """A recurring task. `catch_up`: an occurrence missed while no scheduler ran runs
    once when one starts (the latest only); False: only occurrences after the start."""

    name: str
    cron: str
    run: TaskFunction
    description: str = ""  # for `schedule list`; the first line of `run`'s docstring if empty
    catch_up: bool = True
    queue: str = DEFAULT_QUEUE
    max_attempts: int = 3
    timeout: float | None = 1800.0  # seconds an attempt may take

    @property
    def summary(self) -> str:
        doc = (self.run.__doc__ or "").strip()
        return self.description or (doc.splitlines()[0] if doc else "")


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task with the cron expression it runs on here (None: off, by SCHEDULE_CRON)."""

    task: Task
    cron: str | None
    overridden: bool = False

    @property
    def name(self) -> str:
        return self.task.name

    def latest(self, now: datetime) -> datetime | None:
        """The latest occurrence at or before `now`."""
        if self.cron is None:
            return None
        # CronSim goes back from the second before a whole second, and from the
        # second itself when it has microseconds: `now` itself counts.
        return next(CronSim(self.cron, now.replace(microsecond=now.microsecond or 1), True))

    def following(self, moment: datetime) -> datetime | None:
        """The first occurrence after `moment`."""
        return None if self.cron is None else next(CronSim(self.cron, moment))


def check_cron(task: str, expression: str) -> str:
    """`expression` if it is a cron expression with an occurrence; else ScheduleError."""
    try:
        next(CronSim(expression, datetime(2000, 1, 1)))
    except (CronSimError, StopIteration) as bad:
        raise ScheduleError(
            f"task {task}: {expression!r} is not a cron expression ({bad or 'never occurs'}); "
            "write five fields, minute hour day-of-month month day-of-week, as '17 3 * * *'"
        ) from None
    return expression


class Schedule:
    """The recurring tasks of the application (`app/schedule.py`), and the job that
    runs them."""

    def __init__(self, tasks: Iterable[Task], *, job_name: str = "schedule.run") -> None:
        self._tasks: dict[str, Task] = {}
        for task in tasks:
            if not _TASK_NAME.fullmatch(task.name):
                raise ScheduleError(
                    f"{task.name!r} cannot name a task: use 1 to {TASK_NAME_LENGTH} lower-case "
                    "letters, digits and . _ -, starting with a letter"
                )
            if task.name in self._tasks:
                raise ScheduleError(f"two tasks are named {task.name}")
            check_cron(task.name, task.cron)
            self._tasks[task.name] = task
        self.job: Job[...] = job(job_name, timeout=None)(self._perform)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def plan(self, settings: Settings) -> list[PlannedTask]:
        """Each task with its cron expression after SCHEDULE_CRON."""
        unknown = sorted(set(settings.schedule_cron) - set(self._tasks))
        if unknown:
            raise ScheduleError(
                f"SCHEDULE_CRON names {', '.join(unknown)}, which is no task; the tasks are "
                f"{', '.join(self._tasks)}"
            )
        planned = []
        for task in self._tasks.values():
            override = settings.schedule_cron.get(task.name)
            if override is None:
                planned.append(PlannedTask(task, task.cron))
            elif override.strip().lower() == OFF:
                planned.append(PlannedTask(task, None, overridden=True))
            else:
                planned.append(PlannedTask(task, check_cron(task.name, override), overridden=True))
        return planned

    def message(self, task: Task, run_at: datetime) -> JobMessage:
        """The job that runs `task`'s occurrence `run_at`."""
        return self.job.message(
            task=task.name,
            run_at=run_at.isoformat(),
            queue=task.queue,
            max_attempts=task.max_attempts,
            timeout=task.timeout,
        )

    async def _perform(self, ctx: JobContext, *, task: str, run_at: str) -> None:
        found = self._tasks.get(task)
        if found is None:
            raise LookupError(f"no task is named {task!r} in the schedule (app/schedule.py)")
        started = time.perf_counter()
        outcome = await found.run(ctx)
        took = time.perf_counter() - started
        logger.info("task %s of %s done in %.1f s: %s", task, run_at, took, outcome)
