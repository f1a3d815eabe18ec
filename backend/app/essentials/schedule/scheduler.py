"""`Scheduler`: enqueues each occurrence of the planned tasks, once across all schedulers.

Every second (`tick`), for each task whose next occurrence has come, it takes the
latest occurrence at or before now and, in one auth transaction, inserts its
`(task, run_at)` row and enqueues the task's job; a row already there (another
scheduler's) means nothing is enqueued. Any number of schedulers may run: every
long-running worker does, and `schedule run` processes.

Missed occurrences: a scheduler starting (or waking after its process was paused)
enqueues only the latest occurrence of each task that has no row yet, once; never
one job per occurrence missed. A task declared with `catch_up=False` skips what fell
due before the scheduler started. A claim that fails (the database away) is tried
again on the next tick.
"""

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from app.core.db.integrity import integrity_session
from app.core.db.registry import Databases
from app.core.db.types import utc_now
from app.essentials.queue.queue import Queue
from app.essentials.schedule import runs
from app.essentials.schedule.tasks import PlannedTask, Schedule

logger = logging.getLogger(__name__)

TICK = 1.0  # seconds between two looks at the clock


class Scheduler:
    def __init__(
        self,
        schedule: Schedule,
        plans: Sequence[PlannedTask],
        databases: Databases,
        queue: Queue,
        *,
        started: datetime | None = None,
    ) -> None:
        self.schedule = schedule
        self.plans = [plan for plan in plans if plan.cron is not None]
        self.databases = databases
        self.queue = queue
        started = started or utc_now()
        # Per task: the occurrence this scheduler saw to last, and when the next falls due.
        self.done: dict[str, datetime] = {}
        self.due: dict[str, datetime] = {}
        self.failing: set[str] = set()
        for plan in self.plans:
            latest = plan.latest(started)
            if not plan.task.catch_up and latest is not None:
                self._seen(plan, latest)

    async def tick(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Enqueue what is due at `now`; returns the occurrences this scheduler took."""
        now = now or utc_now()
        taken: list[tuple[str, datetime]] = []
        for plan in self.plans:
            due = self.due.get(plan.name)
            if due is not None and now < due:
                continue
            occurrence = plan.latest(now)
            if occurrence is None or occurrence == self.done.get(plan.name):
                continue
            try:
                claimed = await self._enqueue(plan, occurrence)
            except Exception:
                if plan.name not in self.failing:
                    logger.exception("could not enqueue task %s; trying again", plan.name)
                self.failing.add(plan.name)
                continue
            self.failing.discard(plan.name)
            self._seen(plan, occurrence)
            if claimed:
                taken.append((plan.name, occurrence))
        return taken

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every second until `stop` is set."""
        while not stop.is_set():
            await self.tick()
            try:
                async with asyncio.timeout(TICK):
                    await stop.wait()
            except TimeoutError:
                pass

    def _seen(self, plan: PlannedTask, occurrence: datetime) -> None:
        self.done[plan.name] = occurrence
        following = plan.following(occurrence)
        if following is not None:
            self.due[plan.name] = following

    async def _enqueue(self, plan: PlannedTask, occurrence: datetime) -> bool:
        message = self.schedule.message(plan.task, occurrence)
        claimed = False
        async for attempt in integrity_session(self.databases, "auth", f"schedule {plan.name}"):
            async with attempt as auth_db:
                claimed = await runs.claim(
                    await auth_db.connection(), plan.name, occurrence, message.uuid
                )
                if claimed:
                    await self.queue.backend.push_within(auth_db, [message])
        if claimed:
            logger.info(
                "enqueued task %s of %s (job %s)", plan.name, occurrence.isoformat(), message.uuid
            )
        return claimed
