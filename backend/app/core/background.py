"""Tasks that must end when told: `in_background` (a task that lives as long as a
block: an app's lifespan, a command) and `cancel_and_wait` (stop tasks for good).

    async with in_background(monitor.run(), "replica monitor"):
        yield

A cancellation can be lost. On Python 3.11, `asyncio.wait_for` returns the result of
an operation that completed in the same instant instead of raising the
`CancelledError` (CPython gh-86296, fixed in 3.12), and redis-py bounds every write
to its socket with it: a task cancelled while it sends a Redis command runs on as if
nothing happened (in a tight loop of Redis calls, most cancellations are lost). A task
whose stop matters is therefore cancelled again, every `CANCEL_AGAIN_AFTER`, until
it ends: the interval leaves a task that handles its cancellation (closing a
connection) the time to do so.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Iterable
from typing import Any

logger = logging.getLogger(__name__)

CANCEL_AGAIN_AFTER = 1.0  # seconds


async def cancel_and_wait(
    tasks: Iterable["asyncio.Task[Any]"], again_after: float = CANCEL_AGAIN_AFTER
) -> None:
    """Cancel `tasks` and return once every one has ended (cancelled, or done
    regardless); what each ended with stays on it, for the caller to read."""
    pending = set(tasks)
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=again_after)
        for task in pending:
            logger.warning("%s did not stop when cancelled: cancelling it again", task.get_name())
            task.cancel()


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object], name: str) -> AsyncIterator[None]:
    """The task starts on entry and is stopped on exit; an error it ended with
    earlier does not end the block, and is raised on its exit."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        await cancel_and_wait([task])
        with contextlib.suppress(asyncio.CancelledError):
            await task
