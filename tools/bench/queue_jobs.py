"""The queue benchmark's side in the service's processes: a no-op job, and `push`.

Run from backend/ with the repository root on PYTHONPATH (tools/bench/queue.py does):
the workers load `JOBS` (`queue work --jobs tools.bench.queue_jobs:JOBS`), and
`python -m tools.bench.queue_jobs push N` enqueues N no-op jobs in one transaction.

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
    await runtime.databases.dispose()
    print(f"{started} {committed}")


if __name__ == "__main__":
    pushed = [noop.message() for _ in range(int(sys.argv[2]))]
    Path(sys.argv[3]).write_text("\n".join(message.uuid for message in pushed))
    asyncio.run(push(pushed))
