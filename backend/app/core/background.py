"""`in_background`: a task that lives as long as a block (an app's lifespan, a command).

    async with in_background(monitor.run(), "replica monitor"):
        yield

The task starts on entry and is cancelled, and awaited, on exit (cancelled again
every second should something inside it swallow the cancellation); an error it
raised before then is logged by asyncio as any task's would be, and does not end the
block.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

CANCEL_AGAIN_AFTER = 1.0  # seconds


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object], name: str) -> AsyncIterator[None]:
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        # A driver may swallow the cancellation (caught while closing a connection):
        # the task would then run on, and awaiting it hang the exit. Cancel again
        # until it ends.
        while not (await asyncio.wait({task}, timeout=CANCEL_AGAIN_AFTER))[0]:
            logger.warning("%s did not stop when cancelled: cancelling it again", name)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
