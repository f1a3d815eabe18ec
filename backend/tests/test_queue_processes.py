"""Worker processes as an operator runs them (`python -m app.cli queue work`): killed
with SIGKILL mid-job, four draining one backlog, stopped with SIGTERM; and the
management commands. On each queue backend, over each database backend."""

import asyncio
import re
import signal
from collections import Counter

from app.essentials.queue.jobs import JobMessage
from tests.queue_jobs import block_first, fail, record, sleep
from tests.queue_support import Harness, wait_for


async def test_a_worker_killed_mid_job_loses_nothing(harness: Harness) -> None:
    blocked = await harness.queue.dispatch(block_first)
    others = {await harness.queue.dispatch(record, note=str(number)) for number in range(10)}
    first = harness.start_worker("--concurrency", "20")

    async def blocked_job_started() -> bool:
        return any(run.uuid == blocked for run in await harness.runs())

    await wait_for(blocked_job_started)
    first.kill()  # SIGKILL: no cleanup, its heartbeat simply stops
    await first.finished()
    assert first.returncode == -signal.SIGKILL
    # Its claims still stand: the blocked job (and any it finished without yet deleting
    # it, which will run again: delivery is at least once) looks like it is running.
    assert blocked in {job.uuid for job in await harness.queue.running(limit=100)}

    second = harness.start_worker()

    async def all_done() -> bool:
        # Once the blocked job finished, the others may still be waiting: RabbitMQ gives
        # back the dead worker's jobs in no particular order.
        finished = any(run.note == "finished" for run in await harness.runs())
        return finished and await harness.jobs_left() == 0

    await wait_for(all_done)
    output = await second.stop()

    runs = await harness.runs()
    assert [(run.note, run.attempt) for run in runs if run.uuid == blocked] == [
        ("started", 1),
        ("started", 2),  # the killed attempt was counted
        ("finished", 2),
    ]
    assert others <= {run.uuid for run in runs}
    assert await harness.jobs_left() == 0
    assert await harness.failed_jobs() == 0
    assert await harness.workers_alive() == 0  # the dead one forgotten, the other deregistered
    assert re.search(r"made \d+ jobs of stopped workers available again", output)


async def test_four_workers_drain_two_thousand_jobs_running_each_exactly_once(
    harness: Harness,
) -> None:
    # Nobody dies here, so the heartbeat bound is wide: on a loaded machine a beat can be
    # late by more than the quick second of the other tests without anyone being dead.
    workers = [
        harness.start_worker(
            "--concurrency", "8", QUEUE_HEARTBEAT_INTERVAL="1", QUEUE_HEARTBEAT_TIMEOUT="60"
        )
        for _ in range(4)
    ]

    async def all_registered() -> bool:
        return await harness.workers_alive() == 4

    await wait_for(all_registered)
    messages = [record.message(note=str(number)) for number in range(2000)]
    await harness.queue.backend.push(messages)

    async def drained() -> bool:
        return await harness.jobs_left() == 0

    await wait_for(drained, within=180)
    outputs = [await worker.stop() for worker in workers]

    runs = await harness.runs()
    seen = Counter(run.uuid for run in runs)
    lost = {message.uuid for message in messages} - set(seen)
    duplicated = {uuid for uuid, times in seen.items() if times > 1}
    twice = [(run.uuid, run.attempt, run.pid, run.at) for run in runs if run.uuid in duplicated]
    assert (len(lost), len(duplicated), len(runs)) == (0, 0, 2000), (twice, outputs)
    assert len({run.pid for run in runs}) >= 2  # the work was shared
    assert await harness.failed_jobs() == 0
    logged = [line for output in outputs for line in output.splitlines()]
    assert [line for line in logged if " ERROR " in line] == []
    if harness.databases.auth.engine.dialect.name != "sqlite":  # one writer: no row locks
        # The recovery every worker runs each second reads before it locks: the claims
        # never deadlock with it (on MariaDB they did, in most runs, when it did not).
        assert [line for line in logged if "lock conflict" in line] == []


async def test_sigterm_lets_the_running_job_finish(harness: Harness) -> None:
    await harness.queue.dispatch(sleep, seconds=1.5)
    waiting = await harness.queue.dispatch(record, note="not taken")
    worker = harness.start_worker("--concurrency", "1")

    async def sleeping() -> bool:
        return [run.note for run in await harness.runs()] == ["start"]

    await wait_for(sleeping)
    output = await worker.stop()

    assert [run.note for run in await harness.runs()] == ["start", "end"]
    assert "stopping: 1 jobs running" in output
    # The job not yet taken waits for the next worker.
    assert await harness.jobs_left() == 1
    (counts,) = await harness.queue.status()
    assert (counts.ready, counts.running) == (1, 0)
    assert waiting not in {run.uuid for run in await harness.runs()}
    assert await harness.workers_alive() == 0


async def test_a_job_still_running_after_the_grace_is_handed_back(harness: Harness) -> None:
    uuid = await harness.queue.dispatch(sleep, seconds=60)
    worker = harness.start_worker(QUEUE_SHUTDOWN_GRACE_SECONDS="0.5")

    async def sleeping() -> bool:
        return [run.note for run in await harness.runs()] == ["start"]

    await wait_for(sleeping)
    output = await worker.stop()

    assert "released 1 unfinished jobs" in output
    (counts,) = await harness.queue.status()
    assert (counts.ready, counts.running) == (1, 0)
    # Its attempt was refunded: the next worker runs it as attempt 1 again.
    second = harness.start_worker(QUEUE_SHUTDOWN_GRACE_SECONDS="0.5")
    await wait_for(lambda: _started_twice(harness))
    await second.stop()
    assert [run.attempt for run in await harness.runs() if run.uuid == uuid] == [1, 1]


async def _started_twice(harness: Harness) -> bool:
    return [run.note for run in await harness.runs()] == ["start", "start"]


async def test_a_second_signal_stops_at_once(harness: Harness) -> None:
    await harness.queue.dispatch(sleep, seconds=60)
    worker = harness.start_worker()

    async def sleeping() -> bool:
        return [run.note for run in await harness.runs()] == ["start"]

    await wait_for(sleeping)
    worker.signal(signal.SIGINT)
    await asyncio.sleep(0.3)
    worker.signal(signal.SIGINT)
    output = await worker.finished(within=10)

    assert worker.returncode == 0, output
    assert "released 1 unfinished jobs" in output
    assert await harness.workers_alive() == 0


async def test_the_commands_show_retry_forget_and_flush_failed_jobs(harness: Harness) -> None:
    for message in ("first", "second", "third"):
        await harness.queue.dispatch(fail, message=message, queue="mail")
    await harness.work_off(harness.worker(queues=["mail"]))
    await harness.queue.dispatch(record, delay=3600)
    failed = {
        row.exception.rstrip().rsplit(": ", 1)[1]: row
        for row in await harness.queue.failed(limit=9)
    }

    status = await harness.cli("queue", "status")
    assert status.returncode == 0, status.stderr
    lines = [line.split() for line in status.stdout.splitlines()]
    assert ["default", "0", "1", "0", "0"] in lines
    assert ["mail", "0", "0", "0", "3"] in lines
    assert "0 workers alive" in status.stdout

    listed = await harness.cli("queue", "failed")
    assert listed.returncode == 0, listed.stderr
    assert f"{failed['first'].id}  " in listed.stdout
    assert "ValueError: second" in listed.stdout
    assert failed["third"].uuid in listed.stdout

    retried = await harness.cli("queue", "retry", str(failed["first"].id))
    assert (retried.returncode, retried.stdout.strip()) == (0, "retried 1 jobs")
    again = await harness.cli("queue", "retry", str(failed["first"].id))
    assert again.returncode == 1
    assert f"no failed job has the id {failed['first'].id}" in again.stderr
    forgot = await harness.cli("queue", "forget", str(failed["second"].id))
    assert (forgot.returncode, forgot.stdout.strip()) == (
        0,
        f"forgot failed job {failed['second'].id}",
    )
    assert (await harness.cli("queue", "forget", "12345")).returncode == 1
    assert (await harness.cli("queue", "forget", "twelve")).returncode == 2
    assert (await harness.cli("queue", "retry", "all")).stdout.strip() == "retried 1 jobs"
    assert await harness.failed_jobs() == 0
    await harness.drain(["mail"])
    assert (await harness.cli("queue", "flush")).stdout.strip() == "deleted 2 failed jobs"
    assert (await harness.cli("queue", "failed")).stdout.strip() == "no failed jobs"


async def test_a_worker_refuses_a_registry_that_is_not_one(harness: Harness) -> None:
    for registry in ("tests.queue_jobs:RUNS", "no.such.module:JOBS"):
        worker = harness.start_worker("--jobs", registry, "--stop-when-empty")
        output = await worker.finished()
        assert worker.returncode == 2
        assert "--jobs" in output


async def test_stop_when_empty_leaves_delayed_jobs(harness: Harness) -> None:
    message: JobMessage = record.message(note="later", delay=3600)
    await harness.queue.backend.push([message, record.message(note="now")])
    worker = harness.start_worker("--stop-when-empty")

    output = await worker.finished()

    assert worker.returncode == 0, output
    assert [run.note for run in await harness.runs()] == ["now"]
    assert await harness.jobs_left() == 1
