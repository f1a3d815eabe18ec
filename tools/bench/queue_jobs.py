"""The queue benchmark's side in the service's processes: a no-op job, and `push`.

Run from backend/ with the repository root on PYTHONPATH (tools/bench/queue.py does):
the workers load `JOBS` (`queue work --jobs tools.bench.queue_jobs:JOBS`),
`python -m tools.bench.queue_jobs push N FILE` enqueues N no-op jobs in one transaction
(or, on a broker, one publication) and writes their uuids to FILE, and
`python -m tools.bench.queue_jobs wait` prints the time at which the queue, once it
held jobs, held none (ready, delayed or running, as `queue status` counts them), then
deletes the broker's keys or queues of its QUEUE_PREFIX.

Each worker process keeps the uuid of every job it ran, and writes them to
$BENCH_QUEUE_SEEN/<pid>.txt as it exits: the benchmark counts lost and duplicated jobs
from those files, without a write per job that would slow what it measures.
"""

import asyncio
import atexit
import os
import sys
import time
from pathlib import Path

from app.core.config import Settings
from app.essentials.queue.context import JobContext
from app.essentials.queue.jobs import JobMessage, JobRegistry, job
from app.essentials.queue.rabbitmq_broker import RabbitMQBackend
from app.essentials.queue.redis_broker import RedisBackend
from app.runtime import create_runtime

SEEN: list[str] = []


@job("bench.noop", timeout=None)
async def noop(ctx: JobContext) -> None:
    """Does nothing but note that it ran."""
    SEEN.append(ctx.uuid)


JOBS = JobRegistry([noop])


def _write_seen() -> None:
    folder = os.environ.get("BENCH_QUEUE_SEEN")
    if folder and SEEN:
        (Path(folder) / f"{os.getpid()}.txt").write_text("\n".join(SEEN))


atexit.register(_write_seen)


async def push(messages: list[JobMessage]) -> None:
    """Enqueue `messages` in one transaction; print when it began and committed."""
    runtime = create_runtime(Settings())
    started = time.time()
    await runtime.queue.backend.push(messages)
    committed = time.time()
    await runtime.queue.close()
    await runtime.databases.dispose()
    print(f"{started} {committed}")


async def wait() -> None:
    """Print the time at which the queue, once it held jobs, held none; then clean up."""
    runtime = create_runtime(Settings())
    queue = runtime.queue

    async def until(filled: bool) -> None:
        while True:
            left = sum(row.ready + row.delayed + row.running for row in await queue.status())
            if (left > 0) == filled:
                return
            await asyncio.sleep(0.05)

    print("watching", flush=True)
    await until(filled=True)
    await until(filled=False)
    print(time.time(), flush=True)
    backend = queue.backend
    if isinstance(backend, RedisBackend):
        keys = [key async for key in backend.redis.scan_iter(f"{backend.keys}:*")]
        await backend.redis.delete(*keys)
    elif isinstance(backend, RabbitMQBackend):
        channel = await backend._channel()
        for name in backend.declared:
            await channel.queue_delete(backend.queue_name(name))
    await queue.close()
    await runtime.databases.dispose()


if __name__ == "__main__":
    if sys.argv[1] == "wait":
        asyncio.run(wait())
    else:
        pushed = [noop.message() for _ in range(int(sys.argv[2]))]
        Path(sys.argv[3]).write_text("\n".join(message.uuid for message in pushed))
        asyncio.run(push(pushed))
