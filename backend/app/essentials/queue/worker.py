"""The worker: `python -m app.cli queue work` runs one per process.

One process runs up to `concurrency` jobs at once, each an asyncio task. Its loop
claims as many ready jobs as it has free slots, in the transaction that also deletes
the jobs it finished since its last claim (`QueueBackend.reserve`), so a busy worker
spends one transaction per batch of jobs. Failed attempts are handed back to retry
after their backoff, or moved to `failed_jobs` when out of attempts; an unknown job
name, or a payload that does not fit its function, fails at once and stops nothing
else. Outcomes that cannot be written (a database gone for a moment) are kept and
written on the next round.

Beside the loop, a heartbeat task proves the worker alive and, on a task of its own,
every worker releases the jobs of workers whose heartbeat went stale (their attempt
stays counted); chores (the outbox relay) run on their own timers. A job must not block
the event loop: a loop blocked past `QUEUE_HEARTBEAT_TIMEOUT` looks dead, and its
jobs are handed to another worker.

`stop()` (SIGTERM, SIGINT) takes no new job and gives the running ones
`QUEUE_SHUTDOWN_GRACE_SECONDS` to finish; what is left is cancelled and released
with its attempt refunded, then the worker deregisters. A second `stop(now=True)`
cuts the grace short.

(A little over 300 lines: the loop, a job's run, the heartbeat and the shutdown all
work on the one worker's state, and read best together.)
"""

import asyncio
import json
import logging
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.core.background import CANCEL_AGAIN_AFTER, cancel_and_wait
from app.core.db.failures import is_transaction_conflict
from app.core.db.types import utc_now
from app.essentials.queue.backend import ReservedJob, WorkerGone, WorkerInfo
from app.essentials.queue.context import JobContext, JobServices
from app.essentials.queue.jobs import JobArgumentsError, JobRegistry

logger = logging.getLogger(__name__)

HELPERS_STOP_WITHIN = 2.0  # seconds a stopping worker's heartbeat, recovery, chores get


@dataclass(frozen=True, slots=True)
class Chore:
    """Work every worker does every `interval` seconds besides running jobs."""

    name: str
    interval: float
    run: Callable[[], Awaitable[object]]


def _failed(what: str, error: Exception) -> None:
    """Log a step that failed and is tried again: a lost lock conflict (a deadlock on
    MariaDB, SQLite's busy timeout) is routine, one line; anything else, its traceback."""
    if is_transaction_conflict(error):
        logger.warning("%s lost a lock conflict; trying again", what)
    else:
        logger.exception("%s failed; trying again", what)


async def _set_within(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait up to `seconds` (None: for ever) for `event`: whether it is set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


class _Overdue:
    """Cancels a running job again, every `CANCEL_AGAIN_AFTER`, once it has outlived its
    timeout by that much. The deadline cancels it once, and a cancellation that lands
    while the job sends a Redis command is lost (app/core/background.py): the job would
    run on to its natural end, or for ever."""

    def __init__(self, task: "asyncio.Task[Any]", reserved: ReservedJob) -> None:
        self.task = task
        self.reserved = reserved
        self.loop = asyncio.get_running_loop()
        timeout = reserved.timeout or 0.0
        self.handle = self.loop.call_later(timeout + CANCEL_AGAIN_AFTER, self._again)

    def _again(self) -> None:
        logger.warning(
            "job %s %s outlived its timeout: cancelling it again",
            self.reserved.name,
            self.reserved.uuid,
        )
        self.task.cancel()
        self.handle = self.loop.call_later(CANCEL_AGAIN_AFTER, self._again)

    def cancel(self) -> None:
        self.handle.cancel()


class Worker:
    def __init__(
        self,
        services: JobServices,
        registry: JobRegistry,
        *,
        queues: Sequence[str],
        concurrency: int,
        stop_when_empty: bool = False,
        chores: Sequence[Chore] = (),
    ) -> None:
        settings = services.settings
        self.services = services
        self.registry = registry
        self.backend = services.queue.backend
        self.queues = list(queues)
        self.concurrency = concurrency
        self.stop_when_empty = stop_when_empty
        self.chores = list(chores)
        self.poll_interval = settings.queue_poll_interval
        self.heartbeat_interval = settings.queue_heartbeat_interval
        self.heartbeat_timeout = settings.queue_heartbeat_timeout
        self.grace = settings.queue_shutdown_grace_seconds
        self.info = WorkerInfo(socket.gethostname(), os.getpid(), self.queues, concurrency)
        self.id = 0
        self.processed = 0  # jobs that left this worker: finished, failed or retried
        self._running: dict[asyncio.Task[None], ReservedJob] = {}
        self._finished: list[ReservedJob] = []
        self._retries: list[tuple[ReservedJob, datetime]] = []
        self._failures: list[tuple[ReservedJob, str]] = []
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._handing_back = False  # the running jobs are being cancelled, to hand back
        self._ended = asyncio.Event()  # its jobs handed back: the helpers end too

    def stop(self, *, now: bool = False) -> None:
        """Take no new job; with `now`, do not wait for the running ones either."""
        if now:
            self._hurry.set()
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        self.id = await self.backend.register(self.info)
        logger.info(
            "worker %s started: queues %s, concurrency %s",
            self.id,
            ",".join(self.queues),
            self.concurrency,
        )
        helpers = [
            asyncio.create_task(self._heartbeats(), name="queue heartbeat"),
            asyncio.create_task(self._recoveries(), name="queue recovery"),
        ]
        helpers += [
            asyncio.create_task(self._every(chore), name=chore.name) for chore in self.chores
        ]
        try:
            await self._work()
        finally:
            await self._shut_down()
            await self._end(helpers)
            try:
                await self.backend.deregister(self.id)
            except Exception:
                logger.exception("worker %s could not deregister", self.id)
            logger.info("worker %s stopped after %s jobs", self.id, self.processed)

    # --- the loop ---------------------------------------------------------------------

    async def _work(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            await self._write_outcomes()
            free = self.concurrency - len(self._running)
            if free == 0:
                await self._pause(None)  # until a running job frees its slot
                continue
            try:
                claimed = await self._claim(free)
            except Exception as error:
                _failed("claiming jobs", error)
                await self._pause(self.poll_interval)
                continue
            for reserved in claimed:
                self._start(reserved)
            if claimed:
                continue
            if self.stop_when_empty and not self._running:
                return
            await self._pause(self.poll_interval)

    async def _claim(self, limit: int) -> list[ReservedJob]:
        finished, self._finished = self._finished, []
        try:
            return await self.backend.reserve(self.id, self.queues, limit, finished)
        except BaseException:
            self._finished[:0] = finished  # still to be marked done, on the next round
            raise

    async def _register_again(self) -> None:
        """After being presumed dead: the jobs this worker held were released (those it
        is still running may run twice), and it goes on under a new id. Until then
        its claims found nothing: a claim checks that its worker is registered."""
        logger.error(
            "worker %s was presumed dead (no heartbeat for %g s): the jobs it held were "
            "released and may run twice; it goes on under a new id",
            self.id,
            self.heartbeat_timeout,
        )
        await self.backend.deregister(self.id)
        self.id = await self.backend.register(self.info)

    async def _pause(self, seconds: float | None) -> None:
        await _set_within(self._wake, seconds)

    async def _rest(self, seconds: float) -> bool:
        """A helper's wait between two rounds: whether the worker is done meanwhile."""
        return await _set_within(self._ended, seconds)

    def _start(self, reserved: ReservedJob) -> None:
        task = asyncio.create_task(self._perform(reserved), name=f"job {reserved.name}")
        self._running[task] = reserved
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()

    # --- one job ----------------------------------------------------------------------

    async def _perform(self, reserved: ReservedJob) -> None:
        job = self.registry.get(reserved.name)
        if job is None:
            self._fail(
                reserved,
                f"unknown job name {reserved.name!r}: no job of this name is in the "
                "registry this worker runs (app/jobs.py)",
            )
            return
        if reserved.attempts > reserved.max_attempts:
            self._fail(
                reserved,
                f"attempted {reserved.max_attempts} times, and its worker stopped before "
                "the last attempt finished (killed, or its heartbeat lost)",
            )
            return
        try:
            arguments = json.loads(reserved.payload)
            if not isinstance(arguments, dict):
                raise ValueError("the payload is not a JSON object of keyword arguments")
            job.check_arguments(arguments)
        except (ValueError, JobArgumentsError) as misfit:
            self._fail(reserved, f"the payload does not fit job {job.name}: {misfit}")
            return
        context = JobContext(
            self.services, reserved.uuid, reserved.name, reserved.attempts, reserved.batch_id
        )
        deadline = asyncio.timeout(reserved.timeout)
        task = asyncio.current_task()
        overdue = _Overdue(task, reserved) if task and reserved.timeout is not None else None
        try:
            async with deadline:
                await job.function(context, **arguments)
        except asyncio.CancelledError:
            if self._handing_back or not deadline.expired():
                raise  # the worker stops: `_shut_down` hands the job back
            # The deadline's cancellation was lost, and `_Overdue`'s repeat ended the job.
            self._attempt_failed(
                reserved,
                f"timed out after {reserved.timeout:g} s (and went on until cancelled again)",
            )
        except Exception as error:
            report = "".join(traceback.format_exception(error))
            if deadline.expired():
                report = f"timed out after {reserved.timeout:g} s\n{report}"
            self._attempt_failed(reserved, report)
        else:
            self._finished.append(reserved)
            self.processed += 1
        finally:
            if overdue is not None:
                overdue.cancel()

    def _attempt_failed(self, reserved: ReservedJob, report: str) -> None:
        if reserved.attempts >= reserved.max_attempts:
            self._fail(reserved, report)
            return
        backoff = json.loads(reserved.backoff)
        delay = float(backoff[min(reserved.attempts, len(backoff)) - 1])
        logger.warning(
            "job %s %s failed (attempt %s of %s), retried in %g s: %s",
            reserved.name,
            reserved.uuid,
            reserved.attempts,
            reserved.max_attempts,
            delay,
            report.strip().rsplit("\n", 1)[-1],
        )
        self._retries.append((reserved, utc_now() + timedelta(seconds=delay)))
        self.processed += 1

    def _fail(self, reserved: ReservedJob, report: str) -> None:
        logger.error(
            "job %s %s failed for good after %s attempts: %s",
            reserved.name,
            reserved.uuid,
            reserved.attempts,
            report.strip().rsplit("\n", 1)[-1],
        )
        self._failures.append((reserved, report))
        self.processed += 1

    async def _write_outcomes(self) -> None:
        """Hand back retried jobs and record failed ones; what cannot be written now
        stays for the next round."""
        try:
            while self._retries:
                reserved, available_at = self._retries[0]
                await self.backend.retry_later(self.id, reserved, available_at)
                del self._retries[0]
            while self._failures:
                reserved, report = self._failures[0]
                await self.backend.fail(self.id, reserved, report)
                del self._failures[0]
        except Exception:
            logger.exception("could not record the outcome of a job; trying again")

    # --- beside the loop --------------------------------------------------------------

    async def _heartbeats(self) -> None:
        """Beats on their own task: a recovery waiting on locks (releasing a dead worker's
        jobs) never makes this worker late. They go on while a stopping worker waits for
        its running jobs."""
        while not await self._rest(self.heartbeat_interval):
            try:
                await self.backend.heartbeat(self.id)
            except WorkerGone:
                await self._register_again()
            except Exception:
                logger.exception("heartbeat of worker %s failed", self.id)

    async def _recoveries(self) -> None:
        await self._recover()
        while not await self._rest(self.heartbeat_interval):
            await self._recover()

    async def _recover(self) -> None:
        stale_before = utc_now() - timedelta(seconds=self.heartbeat_timeout)
        try:
            recovered = await self.backend.recover(stale_before)
        except Exception as error:
            _failed("recovering the jobs of stopped workers", error)
            return
        if recovered:
            logger.warning("made %s jobs of stopped workers available again", recovered)

    async def _every(self, chore: Chore) -> None:
        while not await self._rest(chore.interval):
            try:
                await chore.run()
            except Exception:
                logger.exception("%s failed", chore.name)

    # --- stopping ---------------------------------------------------------------------

    async def _shut_down(self) -> None:
        if self._running and not self._hurry.is_set():
            logger.info(
                "worker %s stopping: %s jobs running, waiting up to %g s",
                self.id,
                len(self._running),
                self.grace,
            )
            await self._wait_for_running()
        running = dict(self._running)
        self._handing_back = True
        await cancel_and_wait(running)
        # A job that finished as it was cancelled (or lost the cancellation) is done.
        left = [reserved for task, reserved in running.items() if task.cancelled()]
        await self._write_outcomes()
        try:
            await self._claim(0)  # delete the finished jobs, claim none
            await self.backend.release(self.id, left)
        except Exception:
            # Deregistering (or, failing that, the heartbeat going stale) frees them.
            logger.exception("worker %s could not hand back its jobs", self.id)
        if left:
            logger.warning("worker %s released %s unfinished jobs", self.id, len(left))

    async def _end(self, helpers: list[asyncio.Task[None]]) -> None:
        """The helpers end between two rounds, not cut off in the middle of a
        transaction; one still busy after `HELPERS_STOP_WITHIN` (at once after
        `stop(now=True)`) is cancelled."""
        self._ended.set()
        within = 0 if self._hurry.is_set() else HELPERS_STOP_WITHIN
        _, busy = await asyncio.wait(helpers, timeout=within)
        await cancel_and_wait(busy)

    async def _wait_for_running(self) -> None:
        """Until every running job is done, the grace is over, or `stop(now=True)`."""
        hurry = asyncio.create_task(self._hurry.wait())
        try:
            async with asyncio.timeout(self.grace):
                while self._running and not hurry.done():
                    await asyncio.wait([*self._running, hurry], return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            pass
        finally:
            hurry.cancel()
