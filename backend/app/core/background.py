"""`in_background`: a task that lives as long as a block (an app's lifespan, a command).

    async with in_background(monitor.run(), "replica monitor"):
        yield

The task starts on entry and is cancelled, and awaited, on exit; an error it raised
before then is logged by asyncio as any task's would be, and does not end the block.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object], name: str) -> AsyncIterator[None]:
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
