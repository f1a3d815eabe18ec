"""`in_background`, the way a lifespan runs the credential follower and the replica
monitor: the block's exit stops the task, even one that swallows a cancellation (a
database driver caught mid-read may), instead of waiting on it for ever."""

import asyncio
import time

from app.core.background import CANCEL_AGAIN_AFTER, in_background


async def test_the_task_runs_during_the_block_and_stops_with_it() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async with in_background(tick(), "ticks"):
        await asyncio.sleep(0.1)
    seen = ticks
    await asyncio.sleep(0.05)
    assert seen > 1
    assert ticks == seen  # stopped


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed > 1:
                    raise

    started = time.monotonic()
    async with in_background(stubborn(), "stubborn"):
        await asyncio.sleep(0.01)
    assert swallowed == 2
    assert time.monotonic() - started < CANCEL_AGAIN_AFTER + 1
